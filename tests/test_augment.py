"""deepff.augment: the transforms' geometry, keyed reproducibility, the trainer hook, resume, errors.

Fast (about 15 s in all, most of it the SIGKILL test's three small CLI runs on the
8 x 8 digits); the throughput of augmentation is measured by benchmarks/bench_augment.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import deepff
from deepff import Callback, InputError, Network, SpecError
from deepff.augment import Augment, affine, elastic, elastic_field
from deepff.io import load_checkpoint

H = W = 28


def _digit(n=1, dtype=np.float64):
    """n synthetic 28 x 28 'digits': a thick ring (a zero) inside the frame, values in [0, 1]."""
    r, c = np.indices((H, W))
    out = np.empty((n, H * W), dtype=dtype)
    for k in range(n):
        cy, cx = 13.0 + 0.5 * k, 14.0 - 0.3 * k
        d = np.hypot((r - cy) / 1.3, c - cx)
        out[k] = np.clip(1.0 - np.abs(d - 6.0) / 2.0, 0.0, 1.0).ravel()
    return out


def _centre_of_mass(X):
    img = X.reshape(-1, H, W).astype(np.float64)
    r, c = np.indices((H, W))
    m = img.sum(axis=(1, 2))
    return np.stack([(img * r).sum(axis=(1, 2)) / m, (img * c).sum(axis=(1, 2)) / m], axis=1)


# ------------------------------------------------------------------ geometry
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind, params", [("affine", {"rotation": 0, "scale": 0, "shear": 0, "translate": 0}),
                                          ("elastic", {"alpha": 0})])
def test_identity_parameters_give_the_image_back_exactly(kind, params, dtype):
    X = _digit(5, dtype)
    out = Augment(kind, seed=3, **params).apply(X, np.arange(5), epoch=7)
    assert out.dtype == dtype
    assert np.array_equal(out, X)


def test_translation_moves_the_centre_of_mass_by_the_translation():
    X = _digit(3)
    t = np.array([[1.5, -2.25], [-3.0, 0.75], [0.4, 2.0]])
    out = affine(X, (H, W), rotation=np.zeros(3), scale=np.ones((3, 2)), shear=np.zeros(3), translate=t)
    # (coordinates are rounded to 1/65536 pixel: see deepff.augment._resample)
    np.testing.assert_allclose(_centre_of_mass(out) - _centre_of_mass(X), t, atol=1e-5)
    np.testing.assert_allclose(out.sum(axis=1), X.sum(axis=1), rtol=1e-9)      # no mass lost or made


def test_random_translations_move_the_centre_of_mass_by_the_drawn_amounts():
    X = _digit(4)
    aug = Augment("affine", rotation=0, scale=0, shear=0, translate=3, seed=1)
    idx = np.array([10, 11, 12, 13])
    aug.check(H * W)
    drawn = aug.draw(idx, epoch=2)["translate"]
    assert np.all(np.abs(drawn) <= 3) and np.ptp(drawn) > 0.5
    out = aug.apply(X, idx, epoch=2)
    np.testing.assert_allclose(_centre_of_mass(out) - _centre_of_mass(X), drawn, atol=1e-5)


def test_quarter_turn_is_numpy_rot90():
    X = _digit(2)
    out = affine(X, (H, W), rotation=np.full(2, 90.0), scale=np.ones((2, 2)), shear=np.zeros(2),
                 translate=np.zeros((2, 2)))
    expected = np.rot90(X.reshape(2, H, W), k=1, axes=(1, 2)).reshape(2, -1)   # counter-clockwise
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_scale_spreads_the_mass_about_the_centre():
    X = _digit(1)
    out = affine(X, (H, W), rotation=np.zeros(1), scale=np.full((1, 2), 1.2), shear=np.zeros(1),
                 translate=np.zeros((1, 2)))
    # the ring grows by 1.2 in each direction: the mass (area) by about 1.44
    assert out.sum() / X.sum() == pytest.approx(1.44, rel=0.03)


def test_elastic_field_is_simards_smoothed_and_scaled_noise():
    rng = np.random.default_rng(0)
    u = rng.uniform(-1, 1, (64, 2, H, W))
    d = elastic_field(u, sigma=4.0, alpha=34.0)
    assert d.shape == u.shape
    np.testing.assert_allclose(elastic_field(u, 4.0, 2 * 34.0), 2 * d)           # linear in alpha
    # smoothing by sigma=4 leaves neighbouring displacements strongly correlated, the raw noise not
    inner = d[:, :, 8:20, 8:20]
    corr = np.corrcoef(inner[..., :-1].ravel(), inner[..., 1:].ravel())[0, 1]
    assert corr > 0.9
    # a few pixels at most: an elastic distortion keeps a digit where it was
    assert 0.3 < np.abs(inner).mean() < 3.0
    # a constant displacement field is a translation
    X = _digit(1)
    shift = np.zeros((1, 2, H, W))
    shift[:, 0], shift[:, 1] = -1.0, 2.0           # read from p + (-1, 2): the image moves by (1, -2)
    np.testing.assert_allclose(_centre_of_mass(elastic(X, (H, W), shift)) - _centre_of_mass(X), [[1.0, -2.0]],
                               atol=1e-9)


@pytest.mark.parametrize("kind", ["affine", "elastic"])
def test_default_distortions_keep_the_digit_where_it_was(kind):
    X = _digit(8)
    out = Augment(kind, seed=0).apply(X, np.arange(8), epoch=0)
    assert not np.array_equal(out, X)
    assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-12          # bilinear: values stay in range
    moved = np.linalg.norm(_centre_of_mass(out) - _centre_of_mass(X), axis=1)
    assert moved.max() < 4.0
    np.testing.assert_allclose(out.sum(axis=1) / X.sum(axis=1), 1.0, atol=0.35)


# --------------------------------------------------------- keyed draws
@pytest.mark.parametrize("kind", ["affine", "elastic"])
def test_draws_are_keyed_by_seed_epoch_and_sample(kind):
    X = _digit(6)
    idx = np.arange(100, 106)
    a = Augment(kind, seed=5).apply(X, idx, epoch=3)
    assert np.array_equal(a, Augment(kind, seed=5).apply(X, idx, epoch=3))        # reproducible by seed
    for other in (Augment(kind, seed=6).apply(X, idx, epoch=3), Augment(kind, seed=5).apply(X, idx, epoch=4)):
        assert all(not np.array_equal(a[i], other[i]) for i in range(6))
    # independent of the batch: sample 103 alone, or among others in another order, gets the same distortion
    alone = Augment(kind, seed=5).apply(X[3:4], idx[3:4], epoch=3)
    shuffled = Augment(kind, seed=5).apply(X[[5, 3, 0]], idx[[5, 3, 0]], epoch=3)
    assert np.array_equal(alone[0], a[3]) and np.array_equal(shuffled, a[[5, 3, 0]])


def test_prepared_batches_match_direct_ones():
    """The trainer hook (worker thread, one batch ahead) writes what apply computes."""
    X = _digit(12, np.float32)
    aug = Augment("elastic", seed=2)
    aug.check(H * W)
    order = np.random.default_rng(0).permutation(12)
    out = np.empty((4, H * W), np.float32)
    try:
        for epoch in (0, 1):
            for start in range(0, 12, 4):
                idx = order[start:start + 4]
                aug(X, idx, epoch, out, order[start + 4:start + 8])
                assert np.array_equal(out, aug.apply(X[idx], idx, epoch))
        aug(X, order[:4], 0, out, order[8:12])          # a jump (as after a resume): computed afresh
        aug(X, order[4:8], 0, out, None)                 # not the batch prepared: computed afresh, no new job
        assert np.array_equal(out, aug.apply(X[order[4:8]], order[4:8], 0)) and aug._pending is None
    finally:
        aug.close()
    assert aug._pool is None


# ------------------------------------------------------------ training
def _data(n=96):
    X = _digit(n, np.float32)
    X += np.random.default_rng(1).random(X.shape, dtype=np.float32) * 0.1
    y = np.arange(n) % 3
    return X, y


def _net():
    return Network([deepff.Dense(16, "relu"), deepff.Dense(3, "softmax")], loss="neg_log_likelihood", seed=4)


def test_fit_with_augment_is_reproducible_and_distorts_the_batches():
    X, y = _data()
    runs = []
    for augment in ("elastic", "elastic", None, {"kind": "elastic", "seed": 99}):
        net = _net()
        net.fit(X, y, epochs=2, batch_size=16, optimizer="adam", lr=1e-2, augment=augment)
        runs.append(net.params.theta.copy())
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2]) and not np.array_equal(runs[0], runs[3])
    assert net.trainer_.transform._pool is None          # the worker thread ended with fit


def test_trainer_transform_sees_each_batch_with_its_epoch(monkeypatch):
    monkeypatch.setattr(deepff._fused_step, "ENABLED", False)   # a transformed run takes the numpy step: so does this
    X, y = _data(40)
    seen = []

    def record(Xall, idx, epoch, out, next_idx):
        seen.append((epoch, idx.copy(), None if next_idx is None else next_idx.copy()))
        np.take(Xall, idx, axis=0, out=out)

    net = _net()
    net.fit(X, y, epochs=2, batch_size=16)
    plain = net.params.theta.copy()
    net = _net()
    net.build(H * W)
    trainer = deepff.Trainer(net, epochs=2, batch_size=16)
    trainer.transform = record
    trainer.fit(X, net.prepare_targets(y, 40))
    assert np.array_equal(net.params.theta, plain)    # a copying transform changes nothing
    assert [e for e, _, _ in seen] == [0, 0, 0, 1, 1, 1]
    for e in (0, 1):
        batches = [i for ep, i, _ in seen if ep == e]
        assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(40))
        nexts = [n for ep, _, n in seen if ep == e]
        assert all(np.array_equal(n, b) for n, b in zip(nexts[:-1], batches[1:])) and nexts[-1].size == 0


class _StopAt(Callback):
    def __init__(self, step):
        self.at = step

    def on_batch_end(self, trainer, step, batch_size, loss):
        if step == self.at:
            trainer.request_stop()


def test_stopped_mid_epoch_and_resumed_is_bit_identical():
    X, y = _data()
    full = _net()
    full.fit(X, y, epochs=3, batch_size=16, optimizer="adam", lr=1e-2, augment="affine")
    part = _net()
    part.fit(X, y, epochs=3, batch_size=16, optimizer="adam", lr=1e-2, augment="affine", callbacks=[_StopAt(8)])
    assert part.history_.interrupted
    state = part.trainer_.state_dict()
    again = _net()
    again.fit(X, y, epochs=3, batch_size=16, optimizer="adam", augment="affine", resume_state=state)
    assert np.array_equal(again.params.theta, full.params.theta)


# --------------------------------------------------------------- errors
@pytest.mark.parametrize("augment, error, words", [
    ({"kind": "elastic", "sigma": -1}, SpecError, "sigma must be a finite number >= 0"),
    ({"kind": "elastic", "alpha": float("nan")}, SpecError, "alpha"),
    ({"kind": "affine", "scale": 1.5}, SpecError, "scale must be < 1"),
    ({"kind": "affine", "sigma": 4}, SpecError, "valid parameters: 'rotation', 'scale', 'shear', 'translate'"),
    ({"kind": "blur"}, SpecError, "valid kinds: 'affine', 'elastic'"),
    ("rotate", SpecError, "valid kinds"),
    ({"kind": ["elastic"]}, SpecError, "unknown kind \\['elastic'\\]"),
    ({"sigma": 4}, SpecError, "needs 'kind'"),
    (3, SpecError, "a mapping with 'kind'"),
    ({"kind": "elastic", "image_shape": [28, 27]}, InputError, "image_shape 28 x 27 holds 756 pixels"),
    ({"kind": "elastic", "image_shape": [28, -28]}, SpecError, "two positive integers"),
])
def test_bad_settings_are_refused_before_training(augment, error, words):
    X, y = _data(16)
    net = _net()
    with pytest.raises(error, match=words.replace("(", r"\(")):
        net.fit(X, y, epochs=1, augment=augment)
    assert not hasattr(net, "history_")


def test_features_that_are_not_a_square_image_need_a_shape():
    rng = np.random.default_rng(0)
    X, y = rng.random((20, 30)), np.arange(20) % 2
    net = Network([deepff.Dense(2, "softmax")], loss="neg_log_likelihood", seed=0)
    with pytest.raises(InputError, match="30 features are not a square image; give image_shape"):
        net.fit(X, y, epochs=1, augment="elastic")
    net.fit(X, y, epochs=1, augment={"kind": "elastic", "image_shape": [5, 6], "sigma": 1, "alpha": 2})


def test_full_batch_optimizer_refuses_augment():
    X, y = _data(16)
    with pytest.raises(InputError, match="lbfgs.*drop augment"):
        _net().fit(X, y, optimizer="lbfgs", augment="affine")


def test_config_training_section_checks_augment():
    from deepff.spec import parse_training

    assert parse_training({"augment": {"kind": "elastic", "sigma": 5}})["augment"] == {"kind": "elastic", "sigma": 5}
    with pytest.raises(SpecError, match="training: key 'augment': augment 'elastic': sigma must be"):
        parse_training({"augment": {"kind": "elastic", "sigma": -4}})


# ------------------------------------------------------- the command line
def _cli(*args, cwd, timeout=180):
    return subprocess.run([sys.executable, "-m", "deepff.cli", "train", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_bad_augment_settings_are_one_line_and_exit_2(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(json.dumps({"layers": [{"layer_type": "input", "n_features": 64},
                                          {"layer_type": "output", "n_neurons": 10, "activation": "softmax",
                                           "loss_type": "neg_log_likelihood"}],
                               "training": {"augment": {"kind": "elastic", "image_shape": [4, 8]}}}))
    for args, words in ((["--config", cfg], "image_shape 4 x 8 holds 32 pixels, but the inputs have 64 features"),
                        (["--augment", "blur"], "invalid choice: 'blur'")):
        proc = _cli(*args, "--dataset", "digits", cwd=tmp_path)
        assert proc.returncode == 2 and words in proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert proc.stdout == ""           # refused before the run's header
    assert not list(tmp_path.glob("*.npz"))


EPOCHS = 10


def _cli_train(tmp_path, *extra, augment=("--augment", "elastic")):
    return [sys.executable, "-m", "deepff.cli", "train", "--dataset", "digits", "--hidden", "32",
            "--optimizer", "adam", "--lr", "0.005", "--batch-size", "16", "--epochs", str(EPOCHS),
            "--seed", "3", "--quiet", *augment, *map(str, extra)]


def _epoch_of(path):
    try:
        return load_checkpoint(path)[1]["epoch"]
    except Exception:       # not written yet (or being replaced)
        return -1


def test_cli_resume_of_an_augmented_run_after_sigkill_is_bit_identical(tmp_path):
    full = subprocess.run(_cli_train(tmp_path, "--output", tmp_path / "full.npz"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert full.returncode == 0, full.stderr
    ck = tmp_path / "ck.npz"
    for _attempt in range(3):
        ck.unlink(missing_ok=True)
        victim = subprocess.Popen(_cli_train(tmp_path, "--checkpoint", ck, "--output", tmp_path / "killed.npz"),
                                  cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while _epoch_of(ck) < 2 and victim.poll() is None:
                assert time.monotonic() < deadline, "no second checkpoint in time"
                time.sleep(0.002)
            if victim.poll() is None:
                os.kill(victim.pid, signal.SIGKILL)
            victim.communicate(timeout=180)
        finally:
            if victim.poll() is None:
                victim.kill()
                victim.wait()
        if victim.returncode == -signal.SIGKILL and 2 <= _epoch_of(ck) < EPOCHS:
            break
    else:
        pytest.fail("the run always ended before the kill landed")
    assert load_checkpoint(ck)[2]["training"]["augment"] == "elastic"   # the checkpoint remembers it
    other = subprocess.run([sys.executable, "-m", "deepff.cli", "train", "--resume", ck, "--augment", "affine"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert other.returncode == 2 and "--augment affine contradicts the checkpoint" in other.stderr
    # resumed from the checkpoint alone (no --augment): it continues the augmented run
    resumed = subprocess.run([sys.executable, "-m", "deepff.cli", "train", "--resume", ck, "--quiet",
                              "--output", tmp_path / "resumed.npz"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    expected = deepff.load(tmp_path / "full.npz").params.theta
    got = deepff.load(tmp_path / "resumed.npz").params.theta
    assert np.array_equal(got, expected)
    plain = subprocess.run(_cli_train(tmp_path, "--output", tmp_path / "plain.npz", augment=()), cwd=tmp_path,
                           capture_output=True, text=True, timeout=180)
    assert plain.returncode == 0, plain.stderr
    assert not np.array_equal(deepff.load(tmp_path / "plain.npz").params.theta, expected)   # augment mattered
