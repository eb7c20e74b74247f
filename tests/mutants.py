"""Mutation check: put small deliberate bugs into a copy of deepff, one at a time, and see the tests catch each.

Not part of the suite (pytest collects only ``test_*.py``); run it by hand::

    python tests/mutants.py             # every mutant
    python tests/mutants.py --list      # the list, nothing run
    python tests/mutants.py adam-kernel-drops-bias-correction poisson-value-drops-y

The repository (without .git and caches) is copied once into a temporary
folder. For each mutant, one line inside one named function is changed in the
copy, the mutant's tests run there (``PYTHONPATH`` = the copy's ``src``,
``pytest -x``), and the file is restored. A mutant is *caught* when those
tests fail, *survived* when they pass. A mutant whose text is no longer in its
function (the code moved on) is reported *stale* and counts as a failure of
this script, so the list is kept up to date as the code grows. Each selection
of tests first runs once on the unmutated copy: a selection that fails there
proves nothing.

Mutants name code by module and function (``Class.method``), never by line
number, so unrelated edits elsewhere do not move them. Add one when a bug
gets through, or when a new module lands: the bug a reviewer would fear, in
the fewest characters.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 600


@dataclass(frozen=True)
class Mutant:
    name: str
    area: str
    module: str       # path under src/deepff
    function: str     # "func" or "Class.method": the change must lie inside it
    old: str          # text that occurs exactly once in that function
    new: str
    tests: tuple      # pytest arguments (paths, -k expressions)


def M(name, area, module, function, old, new, *tests):
    return Mutant(name, area, module, function, old, new, tuple(tests))


MUTANTS = [
    # --- the two that survived the first review (issue 17)
    M("poisson-value-drops-y", "losses", "losses.py", "PoissonDeviance.value",
      "per = (xlogy(y, y / hc) - y + hc)", "per = (xlogy(y, y / hc) + hc)", "tests/test_losses.py"),
    M("activation-derivative-kernels-never-run", "kernels", "activations.py", "_derivative_compiled",
      "kernel = get_kernel() if", "kernel = None if", "tests/test_kernels.py"),
    # --- engine: layers, activations, losses
    M("dense-db-mean-not-sum", "engine", "layers.py", "Dense.backward_linear",
      "np.add.reduce(g_z, axis=0, keepdims=True, out=self.db)", "np.mean(g_z, axis=0, keepdims=True, out=self.db)",
      "tests/test_layers.py", "tests/test_gradcheck.py"),
    M("dropout-forgets-rescaling", "engine", "layers.py", "Dense.forward",
      "ws.mask *= 1.0 / keep", "ws.mask *= 1.0", "tests/test_layers.py", "tests/test_network.py"),
    M("batchnorm-running-var-biased", "engine", "layers.py", "Dense._bn_forward",
      "m * var * (n / max(n - 1, 1))", "m * var", "tests/test_layers.py", "tests/test_network.py"),
    M("softmax-backward-drops-h", "engine", "activations.py", "Softmax.backward",
      "out *= h", "out += 0", "tests/test_activations.py"),
    M("relu-numpy-derivative-at-zero", "engine", "activations.py", "ReLU.backward",
      "np.multiply(g, h > 0, out=out)", "np.multiply(g, h >= 0, out=out)",
      "tests/test_activations.py", "tests/test_kernels.py"),
    M("nll-mean-over-size", "engine", "losses.py", "Loss.denominator",
      "return float(h.shape[0] if self.mean_over_rows else h.size)", "return float(h.size)",
      "tests/test_losses.py", "tests/test_gradcheck.py"),
    M("bce-from-logits-unstable", "engine", "losses.py", "BinaryCrossEntropy.value_from_logits",
      "np.log1p(np.exp(-np.abs(a)))", "np.log1p(np.exp(-a))", "tests/test_losses.py"),
    M("huber-linear-part-offset", "engine", "losses.py", "Huber.value",
      "d * (r - 0.5 * d)", "d * (r - d)", "tests/test_losses.py"),
    # --- optimizers (the numpy rules; test_kernels.py holds them to their compiled twins bit for bit)
    M("adam-numpy-bias-correction-unrooted", "optimizers", "optimizers/_adam.py", "Adam._update",
      "tmp /= sqrt_bc2", "tmp /= sqrt_bc2 * sqrt_bc2", "tests/test_optimizers.py", "tests/test_kernels.py",
      "-k", "scalar_reference or fused_optimizer"),
    M("sgd-numpy-ignores-dampening", "optimizers", "optimizers/_rules.py", "SGD._update",
      "np.multiply(d, 1.0 - self.dampening, out=step)", "np.multiply(d, 1.0, out=step)",
      "tests/test_optimizers.py", "tests/test_kernels.py", "-k", "scalar_reference or fused_optimizer"),
    M("adagrad-lr-decay-off-by-one", "optimizers", "optimizers/_rules.py", "Adagrad._update",
      "(self.t - 1) * self.lr_decay", "self.t * self.lr_decay", "tests/test_optimizers.py",
      "tests/test_torch_parity.py"),
    M("rmsprop-centered-adds-mean", "optimizers", "optimizers/_rules.py", "RMSprop._update",
      "np.subtract(v, den, out=den)", "np.add(v, den, out=den)", "tests/test_optimizers.py",
      "tests/test_torch_parity.py"),
    M("sgd-velocity-nesterov-is-plain", "optimizers", "optimizers/_rules.py", "SGD._update",
      "np.multiply(v, mu, out=self._work)   # theta += mu v - lr d", "np.multiply(v, 1.0, out=self._work)",
      "tests/test_optimizers.py", "tests/test_kernels.py", "-k", "lr_in_velocity"),
    # --- compiled kernels
    M("adam-kernel-drops-bias-correction", "kernels", "_kernel_source.py", "_adam",
      "decay_factor, amsgrad, decoupled, 1)", "decay_factor, amsgrad, decoupled, 0)", "tests/test_optimizers.py",
      "tests/test_torch_parity.py"),
    M("float32-adam-kernel-drops-bias-correction", "kernels", "_kernel_source.py", "_adam",
      "decay_factor, amsgrad, decoupled, 2)", "decay_factor, amsgrad, decoupled, 0)", "tests/test_kernels.py",
      "-k", "all_magnitudes"),
    M("float32-adam-root-by-a-float32-reciprocal", "kernels", "_kernel_source.py", "_adam_pass",
      "den = np.float32(root * recip) + eps", "den = root * np.float32(recip) + eps", "tests/test_kernels.py",
      "-k", "all_magnitudes"),
    M("float32-adam-root-kept-in-float64", "kernels", "_kernel_source.py", "_adam_pass",
      "den = np.float32(root * recip) + eps", "den = root * recip + eps", "tests/test_kernels.py",
      "-k", "all_magnitudes"),
    M("float32-adam-product-for-any-divisor", "kernels", "_kernel_source.py", "_adam",
      "elif theta.itemsize == 4 and 1.1754944e-38 <= sqrt_bc2 <= 1:", "elif theta.itemsize == 4:",
      "tests/test_kernels.py", "-k", "never_gives"),
    M("folded-adam-pass-forgets-the-root", "kernels", "_kernel_source.py", "_adam_pass",
      "den = root + eps", "den = vi + eps", "tests/test_dense_step.py"),
    M("adam-skips-the-root-of-pytorchs-rule", "kernels", "_kernel_source.py", "_adam",
      "if sqrt_bc2 == 1:", "if sqrt_bc2 <= 1:", "tests/test_kernels.py", "-k", "bit_identical"),
    M("sgd-kernel-nesterov-is-plain-momentum", "kernels", "_kernel_source.py", "_sgd",
      "d = d + mu * b", "d = b", "tests/test_torch_parity.py", "tests/test_kernels.py"),
    M("sgd-kernel-velocity-forgets-momentum", "kernels", "_kernel_source.py", "_sgd",
      "b = buf[i] * mu - lg", "b = buf[i] - lg", "tests/test_optimizers.py", "-k", "lr_in_velocity"),
    M("bias-relu-kernel-keeps-negative-zero", "kernels", "_piece_kernels.py", "_bias_relu",
      "zero if a <= zero else a", "zero if a < zero else a", "tests/test_kernels.py"),
    M("nll-kernel-forgets-row-max", "kernels", "_piece_kernels.py", "_nll_from_shifted",
      "per = (np.log(s) + m[i]) * ys - ya", "per = np.log(s) * ys - ya", "tests/test_kernels.py"),
    M("dense-step-kernel-doubles-alpha-loss", "kernels", "_kernel_source.py", "_dense_step",
      "lossargs[5] = 0.5 * l2 * sq", "lossargs[5] = l2 * sq", "tests/test_dense_step.py",
      "-k", "kernel_loss or three-hidden-layers"),
    M("dense-step-kernel-penalizes-biases", "kernels", "_kernel_source.py", "_add_l2",
      "theta[i] * l2 * mask[i]", "theta[i] * l2", "tests/test_dense_step.py", "-k", "finite_differences"),
    M("dense-step-kernel-sample-mean-over-rows", "kernels", "_kernel_source.py", "_output_loss",
      "denom = sw_sum if code == 2 else", "denom = np.float64(n) if code == 2 else", "tests/test_dense_step.py",
      "-k", "finite_differences or kernel_loss or trainer"),
    M("dense-step-updates-after-a-non-finite-loss", "kernels", "_kernel_source.py", "_dense_step",
      "if not np.isfinite(loss) and lossargs[7] != 0:", "if False:", "tests/test_dense_step.py", "-k", "non_finite"),
    M("fused-step-takes-dropout", "engine", "_fused_step.py", "plan",
      "layer.dropout or layer.batch_norm", "layer.batch_norm", "tests/test_dense_step.py",
      "-k", "what_it_does_not_cover or network_fit"),
    # --- model files and checkpoints
    # (dropping "or fh.read(1)" from _read_member is an equivalent mutant, not a bug: zipfile checks the CRC as
    # soon as a read reaches the member's end, which fh.read(nbytes) already does)
    M("member-read-allows-any-dtype", "files", "_archive.py", "_read_member",
      "if dtype.hasobject or dtype.kind not in _ALLOWED_KINDS:", "if dtype.hasobject:", "tests/test_io.py"),
    M("load-accepts-non-finite-weights", "files", "io.py", "_build",
      "if not np.isfinite(theta).all():", "if False:", "tests/test_io.py"),
    M("checkpoint-saves-wrong-dropout-stream", "files", "training.py", "Trainer.state_dict",
      '"dropout_rng": net.dropout_rng.bit_generator.state', '"dropout_rng": net.shuffle_rng.bit_generator.state',
      "tests/test_checkpoint.py"),
    M("npz-member-without-header-escapes", "files", "data/tables.py", "load_array_file",
      "if member is not None and not isinstance(member, np.ndarray):", "if False:",
      "tests/test_fuzz_readers.py", "-k", "npz_member"),
    M("header-json-keeps-nan", "files", "_archive.py", "_check_user_json",
      "if _non_finite(obj):", "if False:", "tests/test_io.py", "-k", "non_finite_header or strict_json"),
    M("recovery-loses-the-file-silently", "files", "atomic.py", "write_or_recover",
      "    raise error", "    return None, error", "tests/test_io.py", "-k", "recovery"),
    # --- training loop
    M("epoch-loss-unweighted-by-batch-size", "training", "training.py", "Trainer._run_epoch",
      "loss_sum += J * m", "loss_sum += J", "tests/test_training.py"),
    M("early-stopping-one-epoch-late", "training", "callbacks.py", "EarlyStopping.update",
      "return self.wait >= self.patience", "return self.wait > self.patience", "tests/test_training.py"),
    M("clip-norm-clips-late", "training", "regularizers.py", "clip_grad_norm",
      "if norm > max_norm:", "if norm > 2 * max_norm:", "tests/test_regularizers.py", "tests/test_training.py"),
    M("l2-gradient-halved", "training", "regularizers.py", "Penalty.add_grad",
      "g += l2 * w", "g += 0.5 * l2 * w", "tests/test_regularizers.py", "tests/test_gradcheck.py"),
    M("resume-on-new-data-compares-shapes-only", "training", "model.py", "_check_same_data",
      "or saved == now:", "or saved['shape'] == now['shape']:", "tests/test_training.py", "-k", "other_data"),
    M("data-digest-ignores-targets", "training", "validation.py", "data_digest",
      "for part in (X, Y, w):", "for part in (X, w):", "tests/test_training.py", "tests/test_validation.py",
      "-k", "other_data or digest"),
    # --- the scikit-learn wrapper (and scikit-learn's rules as options of deepff's optimizers)
    M("sklearn-adam-drops-bias-correction", "sklearn", "optimizers/_adam.py", "Adam._step_size",
      "return self.lr * math.sqrt(bc2) / bc1, 1.0", "return self.lr / bc1, 1.0",
      "tests/test_optimizers.py", "-k", "fold_bias_correction"),
    M("sample-mean-divides-by-rows", "sklearn", "losses.py", "Loss.denominator",
      "total = float(np.add.reduce(w, dtype=np.float64))", "total = float(w.shape[0])",
      "tests/test_sklearn.py", "-k", "matches_sklearn or weight"),
    M("sklearn-early-stopping-tol-sign", "sklearn", "sklearn/_solvers.py", "_ScikitLearnRule.on_epoch_end",
      "improved = not score < est.best_validation_score_ + est.tol",
      "improved = not score < est.best_validation_score_ - est.tol",
      "tests/test_sklearn.py", "-k", "matches_sklearn or early"),
    M("per-sample-penalty-not-divided", "sklearn", "regularizers.py", "Penalty.value",
      "return total / batch_weight if self.per_sample else total", "return total",
      "tests/test_sklearn.py", "-k", "matches_sklearn"),
    M("sklearn-multi-output-loss-not-per-output", "sklearn", "sklearn/_solvers.py", "_Solvers._reported_loss",
      "return (loss - penalty) / k + penalty", "return loss", "tests/test_sklearn.py", "tests/test_dense_step.py",
      "-k", "multi"),
    M("sklearn-row-order-reshuffles-from-scratch", "sklearn", "sklearn/_solvers.py", "_Solvers._row_order",
      "order[0] = order[0][perm]", "order[0] = perm", "tests/test_sklearn.py", "-k", "matches_sklearn"),
    # --- schedules, metrics, data, initializers, gradcheck
    M("cosine-half-period", "schedules", "schedules.py", "Cosine.lr",
      "math.cos(math.pi * p)", "math.cos(math.pi * p / 2)", "tests/test_schedules.py"),
    M("plateau-raises-the-rate", "schedules", "schedules.py", "Plateau.epoch_end",
      "self.scale /= self.factor", "self.scale *= self.factor", "tests/test_schedules.py"),
    M("r2-total-sum-uncentred", "metrics", "metrics.py", "regression_report",
      "ss_tot = (w * (yt - (w * yt).sum(axis=0)) ** 2).sum(axis=0)", "ss_tot = (w * yt ** 2).sum(axis=0)",
      "tests/test_metrics.py"),
    M("confusion-matrix-transposed", "metrics", "metrics.py", "confusion_matrix",
      "np.add.at(cm, (t, p), 1)", "np.add.at(cm, (p, t), 1)", "tests/test_metrics.py"),
    M("standardizer-sample-std", "data", "data/preprocessing.py", "Standardizer.fit",
      "std = np.sqrt(m2 / count)", "std = np.sqrt(m2 / max(count - 1, 1))", "tests/test_datasets.py",
      "-k", "standardiz or Standardiz"),
    M("csv-accepts-underscore-digits", "data", "data/tables.py", "_numbers",
      'if "_" not in cells and cells.isascii():', "if True:", "tests/test_datasets.py", "-k", "csv"),
    M("idx-accepts-trailing-data", "data", "data/mnist.py", "_read_idx",
      "if f.read(1):", "if False:", "tests/test_datasets.py", "-k", "idx"),
    M("variance-scaling-uniform-too-narrow", "initializers", "initializers.py", "_VarianceScaling.sample",
      "limit = math.sqrt(3 * var)", "limit = math.sqrt(var)", "tests/test_initializers.py"),
    M("gradcheck-one-sided-scale", "gradcheck", "gradcheck.py", "_central_differences",
      "numeric[i] = (j_plus - j_minus) / (2 * eps)", "numeric[i] = (j_plus - j_minus) / eps",
      "tests/test_gradcheck.py"),
    M("gradcheck-atol-never-decides", "gradcheck", "gradcheck.py", "_compare",
      "if within:", "if False:", "tests/test_gradcheck.py", "-k", "atol or tolerance or relative_error"),
    # --- newer modules: augment, distributed, onnx, convert
    M("augment-keyed-by-batch-position", "augment", "augment.py", "Augment._rngs",
      "int(i)]) for i in idx]", "int(i)]) for i in range(len(idx))]", "tests/test_augment.py", "-k", "keyed"),
    M("augment-draws-ignore-the-epoch", "augment", "augment.py", "Augment._rngs",
      "[self.seed, int(epoch), int(i)]", "[self.seed, int(i)]", "tests/test_augment.py", "-k", "keyed"),
    M("distributed-rows-weigh-one-over-their-share", "distributed", "distributed.py", "Reducer.weights",
      "scale = m_local / m", "scale = 1.0", "tests/test_distributed.py", "-k", "k_ranks and sgd_momentum"),
    M("distributed-shares-overlap", "distributed", "distributed.py", "shard_bounds",
      "(rank + 1) * m // size", "min((rank + 1) * m // size + 1, m)", "tests/test_distributed.py",
      "-k", "shares_cover"),
    M("onnx-gemm-drops-the-bias", "onnx", "onnx.py", "_layer",
      "b = layer.b.astype(np.float64)", "b = 0 * layer.b.astype(np.float64)",
      "tests/test_onnx.py", "-k", "every_activation and tanh"),
    M("onnx-batchnorm-scale-not-folded", "onnx", "onnx.py", "_layer",
      "W = W * s", "W = W", "tests/test_onnx.py", "-k", "every_activation and tanh"),
    M("from-torch-ignores-bias-before-batchnorm", "convert", "convert.py", "from_torch",
      "arr(bn.running_mean) - bias", "arr(bn.running_mean)", "tests/test_convert.py", "-k", "torch"),
    M("to-torch-weight-not-transposed", "convert", "convert.py", "to_torch",
      "np.ascontiguousarray(layer.W.T)", "np.ascontiguousarray(layer.W).reshape(layer.units, layer.n_in)",
      "tests/test_convert.py", "-k", "torch"),
    # --- speed: numpy's gemm, plain SGD inside the products, no numba for short fits
    M("blas-product-ignores-transpose", "speed", "_kernel_source.py", "_product",
      "ta = np.int32(_TRANS if trans_a else _NO_TRANS)", "ta = np.int32(_NO_TRANS)", "tests/test_blas.py",
      "-k", "product"),
    M("blas-product-ignores-beta", "speed", "_kernel_source.py", "_product",
      "al, be = c.dtype.type(alpha), c.dtype.type(beta)", "al, be = c.dtype.type(alpha), c.dtype.type(0)",
      "tests/test_blas.py", "-k", "product"),
    M("plain-sgd-forgets-the-bias", "speed", "_kernel_source.py", "_dense_step",
      "b[j] = b[j] - lr * db[j]", "b[j] = b[j]", "tests/test_dense_step.py", "-k", "plain_sgd_inside"),
    M("plain-sgd-ignores-callbacks-reading-gradients", "speed", "_fused_step.py", "FusedStep.__init__",
      "self._opt_code == 1 and not _gradients_read(trainer.callbacks)", "self._opt_code == 1",
      "tests/test_dense_step.py", "-k", "callback_reading"),
    M("plain-sgd-never-leaves-an-epochs-gradient", "speed", "_fused_step.py", "FusedStep.steps",
      "code, self._opt_code if start + count * bs >= n else code,", "code, code,",
      "tests/test_dense_step.py", "tests/test_compiled_runs.py", "-k", "epochs_last"),
    M("a-diverged-step-in-a-run-still-counts", "speed", "_fused_step.py", "FusedStep.steps",
      "opt.t = t + done - 1", "opt.t = t + done", "tests/test_compiled_runs.py", "-k", "divergence"),
    M("a-run-of-steps-skips-a-callbacks-hook", "speed", "_fused_step.py", "between_steps",
      "return any(_batch_hook(cb) and", "return any(False and",
      "tests/test_compiled_runs.py", "-k", "brings_back"),
    M("a-run-of-steps-keeps-its-first-learning-rate", "speed", "training.py", "Trainer._run_epoch",
      "self.schedule.lr(self.base_lr, first + k, epoch)", "self.schedule.lr(self.base_lr, first, epoch)",
      "tests/test_compiled_runs.py", "-k", "many_steps"),
    M("a-refused-batch-keeps-the-last-steps-rate", "speed", "_fused_step.py", "FusedStep.steps",
      "opt.lr = lr_at(0)                           # (the first", "pass  # (the first",
      "tests/test_compiled_runs.py", "-k", "zero_weight"),
    M("a-callback-reading-gradients-sees-only-the-runs-last", "speed", "_fused_step.py", "between_steps",
      ' or getattr(cb, "reads_gradients", None))', ")", "tests/test_compiled_runs.py", "-k", "reading_gradients"),
    M("a-run-of-steps-trains-on-a-batch-weighing-0", "speed", "_fused_step.py", "FusedStep.steps",
      "                    count = k\n", "                    pass\n",
      "tests/test_compiled_runs.py", "-k", "zero_weight"),
    M("short-fits-load-numba-anyway", "speed", "_fused_step.py", "_first_choice",
      "_DEFERRED_S[0] + this_fit >= LOAD_AFTER_S:", "True:", "tests/test_kernel_loading.py"),
    M("deferred-fits-do-not-add-up", "speed", "_fused_step.py", "_first_choice",
      "_DEFERRED_S[0] += this_fit", "_DEFERRED_S[0] += 0.0", "tests/test_kernel_loading.py"),
    M("a-run-forgets-its-kernels-choice", "speed", "_fused_step.py", "kernels_for",
      "    if choice is None:\n", "    if True:\n",
      "tests/test_kernel_loading.py"),
    M("a-growing-run-never-takes-the-kernels", "speed", "_fused_step.py", "kernels_for",
      "choice = _kernels.enabled()                         # the run has grown long enough",
      "choice = False",
      "tests/test_kernel_loading.py"),
    M("numba-off-records-the-kernels", "speed", "_fused_step.py", "_first_choice",
      "        return _kernels.enabled()                   # (imports numba; False where it cannot)",
      "        return True",
      "tests/test_kernel_loading.py"),
    M("a-checkpoint-forgets-its-kernels-choice", "speed", "training.py", "Trainer.load_state_dict",
      'self.compiled_kernels = state.get("compiled_kernels")', "self.compiled_kernels = None",
      "tests/test_kernel_loading.py"),
    M("built-step-name-ignores-the-source", "speed", "_aot.py", "module_name",
      "h = hashlib.sha256(source)", "h = hashlib.sha256(b\"\")", "tests/test_ahead_of_time.py"),
    M("built-step-name-ignores-the-cpu", "speed", "_aot.py", "module_name",
      "platform.machine(), cpu):", "platform.machine()):",
      "tests/test_ahead_of_time.py"),
    M("short-runs-skip-the-built-step", "speed", "_fused_step.py", "_first_choice",
      "return True                                 # built ahead of time: no numba to load", "pass",
      "tests/test_ahead_of_time.py"),
    M("the-built-step-takes-int32-rows-unconverted", "speed", "_fused_step.py", "FusedStep._check",
      "idx.dtype != np.int64 or ", "", "tests/test_ahead_of_time.py", "-k", "refuses"),
    M("the-built-step-trusts-replaced-optimizer-states", "speed", "_fused_step.py", "FusedStep._check",
      "if ids != self._state_ids:", "if not self._state_ids:", "tests/test_ahead_of_time.py", "-k", "refuses"),
    M("a-damaged-built-step-crashes-the-fit", "speed", "_aot.py", "load",
      "    except Exception as exc:  # noqa: BLE001 - any failure to import means: not there",
      "    except KeyError as exc:", "tests/test_ahead_of_time.py", "-k", "damaged"),
    M("built-step-name-ignores-how-it-is-built", "speed", "_aot.py", "step_module_name",
      "for file in (_kernels.__file__, __file__):", "for file in (_kernels.__file__,):",
      "tests/test_ahead_of_time.py", "-k", "not_taken"),
    M("built-step-name-ignores-numba", "speed", "_aot.py", "module_name",
      '_version("numba"), ', "", "tests/test_ahead_of_time.py", "-k", "not_taken"),
    M("the-build-keeps-pythons-error-model", "speed", "_aot.py", "_as_the_jit_compiles",
      'self.error_model = "numpy"', "pass", "tests/test_ahead_of_time.py", "-k", "says_where"),
    M("the-built-step-holds-the-gil", "speed", "_aot.py", "_as_the_jit_compiles",
      "self.release_gil = True", "pass", "tests/test_ahead_of_time.py", "-k", "other_threads_run"),
    M("the-build-is-not-checked", "speed", "_aot.py", "_same_as_numbas",
      "if proc.stdout.split()[-1:] != [expected]:", "if False:", "tests/test_ahead_of_time.py", "-k", "check"),
    M("a-module-others-may-write-is-loaded", "speed", "_aot.py", "_refusal",
      "    if st.st_mode & 0o022:", "    if False:", "tests/test_ahead_of_time.py", "-k", "others_may_write"),
    M("a-refused-built-step-still-counts", "speed", "_fused_step.py", "FusedStep.steps",
      "opt.t = t                               # no step took place", "pass",
      "tests/test_ahead_of_time.py", "-k", "refuses"),
    M("validation-loads-numba", "speed", "metrics.py", "evaluate",
      "with numpy_only():", "with np.errstate():", "tests/test_ahead_of_time.py", "-k", "validation"),
    # --- the optimizer's pass and the gather shared with OpenBLAS's worker
    M("the-shared-pass-skips-an-entry", "speed", "_kernel_source.py", "_update",
      "sh[0] = 0 if k == 0 else half", "sh[0] = 0 if k == 0 else half + 1", "tests/test_shared_pass.py"),
    M("the-shared-gather-skips-a-row", "speed", "_kernel_source.py", "_gather",
      "sh[0] = 0 if k == 0 else half", "sh[0] = 0 if k == 0 else half + 1", "tests/test_shared_pass.py", "-k",
      "gather"),
    M("the-pools-thread-keeps-its-own-sse-register", "speed", "_kernel_source.py", "_share",
      "    _set_mxcsr(sh[12])\n", "", "tests/test_shared_pass.py", "-k", "denormals"),
    M("one-openblas-thread-still-asks-the-pool", "speed", "_kernel_source.py", "_pool_ready",
      "_view(blas[4], 1, np.int32(0))[0] >= 2", "_view(blas[4], 1, np.int32(0))[0] >= 1",
      "tests/test_shared_pass.py", "-k", "one_openblas_thread"),
    M("a-short-pass-goes-to-the-pool", "speed", "_kernel_source.py", "_pool_ready",
      "entries >= SHARE_MIN and", "entries >= 1 and", "tests/test_shared_pass.py", "-k", "short"),
    M("sgds-pass-shared-from-adams-length", "speed", "_kernel_source.py", "_update",
      "n if opt_code == 0 else n // 2", "n", "tests/test_shared_pass.py", "-k", "short"),
    M("the-pool-found-in-another-library", "speed", "_blas.py", "_pool",
      "or any(_library_of(a) != home for a in addresses)", "or False", "tests/test_shared_pass.py", "-k",
      "another_library"),
]


def _function_span(source, qualname):
    """(start, end) character offsets of function ``qualname`` ("f" or "Class.f") in ``source``, or None."""
    tree = ast.parse(source)
    parts = qualname.split(".")
    scope = tree.body
    node = None
    for i, part in enumerate(parts):
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef) if i == len(parts) - 1 else (ast.ClassDef,)
        node = next((n for n in scope if isinstance(n, kinds) and n.name == part), None)
        if node is None:
            return None
        scope = node.body
    lines = source.splitlines(keepends=True)
    start = sum(len(line) for line in lines[:node.lineno - 1])
    return start, start + sum(len(line) for line in lines[node.lineno - 1:node.end_lineno])


def mutate(source, mutant):
    """The source with the mutant applied, or None when its text is not (exactly once) in its function."""
    span = _function_span(source, mutant.function)
    if span is None:
        return None
    body = source[span[0]:span[1]]
    if body.count(mutant.old) != 1:
        return None
    mutated = source[:span[0]] + body.replace(mutant.old, mutant.new) + source[span[1]:]
    compile(mutated, mutant.module, "exec")     # a mutant must be valid Python: a SyntaxError is no catch
    return mutated


def _copy_tree(dest):
    ignore = shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", "site",
                                    "*.egg-info", ".venv", "runs")
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)


def _pytest(copy, tests):
    env = dict(os.environ, PYTHONPATH=str(copy / "src"), PYTHONDONTWRITEBYTECODE="1")
    env.pop("DEEPFF_NUMBA", None)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                              cwd=copy, env=env, capture_output=True, text=True, timeout=TIMEOUT)
        code, tail = proc.returncode, (proc.stdout + proc.stderr).strip().splitlines()[-1:]
    except subprocess.TimeoutExpired:
        code, tail = "timeout", [f"no result after {TIMEOUT} s"]
    return code, time.perf_counter() - t0, (tail or [""])[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.names or m.name in args.names]
    unknown = set(args.names) - {m.name for m in MUTANTS}
    if unknown:
        parser.error(f"unknown mutant(s): {', '.join(sorted(unknown))}")
    if args.list:
        for m in chosen:
            print(f"{m.name:42s} {m.area:12s} {m.module}:{m.function}")
        return 0
    with tempfile.TemporaryDirectory(prefix="deepff-mutants-") as tmp:
        copy = Path(tmp) / ROOT.name
        _copy_tree(copy)
        baseline = {}
        results = []
        t_start = time.perf_counter()
        for m in chosen:
            path = copy / "src" / "deepff" / m.module
            original = path.read_text()
            mutated = mutate(original, m)
            if mutated is None:
                results.append((m, "STALE", 0.0, f"{m.old!r} not found once in {m.module}:{m.function}"))
                print(f"STALE     {m.name}", flush=True)
                continue
            if m.tests not in baseline:
                code, _, tail = _pytest(copy, m.tests)
                baseline[m.tests] = code == 0
                if code != 0:
                    print(f"baseline fails for {' '.join(m.tests)}: {tail}", flush=True)
            if not baseline[m.tests]:
                results.append((m, "NO-BASELINE", 0.0, "its tests fail on the unmutated copy"))
                continue
            path.write_text(mutated)
            try:
                code, seconds, tail = _pytest(copy, m.tests)
            finally:
                path.write_text(original)
            verdict = "caught" if code != 0 else "SURVIVED"
            results.append((m, verdict, seconds, tail))
            print(f"{verdict:9s} {m.name:42s} {seconds:6.1f} s  {tail}", flush=True)
        elapsed = time.perf_counter() - t_start
    caught = sum(r[1] == "caught" for r in results)
    print(f"\n{caught} of {len(results)} mutants caught in {elapsed:.0f} s "
          f"({len({m.area for m in chosen})} areas)")
    for m, verdict, _, note in results:
        if verdict != "caught":
            print(f"  {verdict}: {m.name} ({m.module}:{m.function}) {note}")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
