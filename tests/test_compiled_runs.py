"""Many compiled steps in one call (deepff._fused_step.FusedStep.steps): the same bits as one call a step.

Where nothing needs Python between steps (no callback's on_batch_end, no
max-norm constraint), the trainer runs :data:`deepff._fused_step.ROWS_PER_CALL`
rows' worth of steps in one compiled call. Each of those steps is the same
compiled step, so a fit must give the same weights, optimizer state, history
and errors to the bit as the same fit run one call a step (which a callback
that overrides on_batch_end forces).
"""

import numpy as np
import pytest

import deepff
from _needs import require_kernels
from deepff import _fused_step, _kernels
from deepff.layers import Dense
from deepff.network import FeedForward
from deepff.regularizers import Penalty
from deepff.training import Trainer

require_kernels()


class _EachStep(deepff.Callback):
    """Overrides on_batch_end, so the trainer comes back to Python after every step.

    It reads no gradients, so plain SGD still moves W inside the products:
    the steps take the same codes as in a run of many steps.
    """

    reads_gradients = False

    def __init__(self):
        self.seen = []

    def on_batch_end(self, trainer, step, batch_size, loss):
        self.seen.append((step, batch_size, loss))


def _data(n=230, k=3, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 7)).astype(dtype)
    Y = np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
    return X, Y


def _net(dtype="float64", reduction="mean"):
    loss = deepff.losses.get({"name": "nll", "reduction": reduction})
    return FeedForward([Dense(16, "relu"), Dense(8, "sigmoid"), Dense(3, "softmax")], loss=loss, n_features=7,
                       dtype=dtype, seed=1)


def _fit(each_step, optimizer, *, dtype="float64", penalty=None, schedule=None, w=None, reduction="mean",
         epochs=3, batch_size=16, fits=1):
    """A fit (``fits`` calls of ``fit``, ``epochs`` in all), one call a step or many; what it leaves."""
    X, Y = _data(dtype=dtype)
    net = _net(dtype, reduction)
    net.params.grad[:] = np.nan                  # what no step writes stays NaN
    cb = _EachStep()
    trainer = Trainer(net, optimizer=optimizer, penalty=penalty, schedule=schedule, epochs=1,
                      batch_size=batch_size, callbacks=[cb] if each_step else [])
    for i in range(fits):
        trainer.epochs = epochs * (i + 1) // fits
        trainer.fit(X, Y, w)
    assert trainer.compiled_kernels
    opt = trainer.optimizer
    return {"theta": net.params.theta.copy(), "grad": net.params.grad.copy(), "t": opt.t, "lr": opt.lr,
            "state": {k: v.copy() for k, v in getattr(opt, "state", {}).items() if isinstance(v, np.ndarray)},
            "history": trainer.history.records, "step": trainer.step, "losses": [s[2] for s in cb.seen]}


def _same(a, b):
    assert np.array_equal(a["theta"], b["theta"])
    assert np.array_equal(a["grad"], b["grad"], equal_nan=True)
    assert a["state"].keys() == b["state"].keys()
    for key in a["state"]:
        assert np.array_equal(a["state"][key], b["state"][key]), key
    assert (a["t"], a["lr"], a["step"]) == (b["t"], b["lr"], b["step"])
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in a["history"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in b["history"]]


CASES = {
    "adam": {"optimizer": {"name": "adam", "lr": 0.01}},
    "adam-float32": {"optimizer": {"name": "adam", "lr": 0.01}, "dtype": "float32"},
    "plain-sgd": {"optimizer": {"name": "sgd", "lr": 0.1}},
    "nesterov-l2": {"optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True},
                    "penalty": Penalty(l2=0.01)},
    "adamw-cosine": {"optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.1}, "schedule": "cosine"},
    "sgd-step-schedule": {"optimizer": {"name": "sgd", "lr": 0.1}, "schedule": {"name": "step", "step_size": 1}},
    "weighted-sample-mean": {"optimizer": "adam", "w": np.linspace(0.1, 2.0, 230), "reduction": "sample_mean"},
    "three-fits": {"optimizer": "adam", "fits": 3},
}


@pytest.mark.parametrize("rows_per_call", [1, 48, 100, 4096])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_many_steps_a_call_give_the_bits_of_one_a_call(case, rows_per_call, compiled_calls, monkeypatch):
    monkeypatch.setattr(_fused_step, "ROWS_PER_CALL", rows_per_call)
    one = _fit(True, **case)
    steps, one_calls = compiled_calls["steps"], compiled_calls["calls"]
    assert steps == one_calls == 3 * 15                  # 230 rows in 15 batches of 16 (the last of 6), 3 epochs
    many = _fit(False, **case)
    _same(many, one)
    assert compiled_calls["steps"] - steps == steps
    per_call = max(1, rows_per_call // 16)               # the epoch's steps in runs of per_call (the last shorter)
    fits = case.get("fits", 1)
    many_calls = compiled_calls["calls"] - one_calls
    assert many_calls == 3 * -(-15 // per_call) if fits == 1 else many_calls >= 3


def test_plain_sgd_leaves_the_epochs_last_gradient_in_a_run_of_steps(compiled_calls):
    """W's gradient is written at each epoch's last step only (moved inside the products before it)."""
    many = _fit(False, {"name": "sgd", "lr": 0.1})
    one = _fit(True, {"name": "sgd", "lr": 0.1})
    assert np.isfinite(many["grad"]).all()
    _same(many, one)


def test_a_callback_or_max_norm_brings_back_one_call_a_step(compiled_calls):
    X, Y = _data()
    for callbacks, max_norm in (([_EachStep()], None), ([], 2.0)):
        net = FeedForward([Dense(16, "relu", max_norm=max_norm), Dense(3, "softmax")], loss="nll", n_features=7,
                          dtype="float64", seed=1)
        before = dict(compiled_calls)
        Trainer(net, optimizer="adam", epochs=2, batch_size=16, callbacks=callbacks).fit(X, Y)
        assert compiled_calls["calls"] - before["calls"] == compiled_calls["steps"] - before["steps"] == 30
    before = dict(compiled_calls)
    Trainer(_net(), optimizer="adam", epochs=2, batch_size=16, callbacks=[deepff.Callback()]).fit(X, Y)
    ran = (compiled_calls["calls"] - before["calls"], compiled_calls["steps"] - before["steps"])
    assert ran == (2, 30)                         # no hook overridden


def test_a_divergence_inside_a_run_of_steps_stops_where_one_call_a_step_stops(compiled_calls, monkeypatch):
    """The step whose loss is not finite ends the call; the trainer reports it as at one call a step."""
    X, Y = _data()
    X[100:] = np.inf                              # finite rows first: the divergence comes mid-epoch
    out = []
    for each_step in (True, False):
        net = _net()
        trainer = Trainer(net, optimizer={"name": "adam", "lr": 0.01}, schedule="cosine", epochs=2, batch_size=16,
                          shuffle=False, callbacks=[_EachStep()] if each_step else [])
        with pytest.raises(deepff.DivergenceError) as info:
            trainer.fit(X, Y)
        out.append((str(info.value), net.params.theta.copy(), trainer.optimizer.t, trainer.optimizer.lr,
                    trainer.step, trainer.optimizer.state["exp_avg"].copy()))
    (msg1, theta1, t1, lr1, step1, m1), (msg2, theta2, t2, lr2, step2, m2) = out
    assert "step 7" in msg1 and msg1 == msg2      # rows 96-111 hold the first of the huge rows
    assert np.array_equal(theta1, theta2) and np.array_equal(m1, m2) and np.isfinite(theta2).all()
    assert (t1, lr1, step1) == (t2, lr2, step2) == (6, lr1, 6)
    net = _net()                                  # the numpy step stops at the same step, at the same rate
    trainer = Trainer(net, optimizer={"name": "adam", "lr": 0.01}, schedule="cosine", epochs=2, batch_size=16,
                      shuffle=False)
    with monkeypatch.context() as m, pytest.raises(deepff.DivergenceError) as info:
        m.setattr(_fused_step, "ENABLED", False)
        trainer.fit(X, Y)
    assert str(info.value) == msg1 and (trainer.optimizer.t, trainer.optimizer.lr, trainer.step) == (6, lr1, 6)


def test_a_batch_of_zero_weight_inside_a_run_raises_at_its_step(compiled_calls, monkeypatch):
    """Under the "sample_mean" reduction a batch weighing 0 is the loss's error, raised before that step."""
    X, Y = _data()
    w = np.ones(230)
    w[64:80] = 0                                  # the fifth batch of 16, in file order
    out = []
    for each_step, compiled in ((True, True), (False, True), (True, False)):
        net = _net(reduction="sample_mean")
        trainer = Trainer(net, optimizer="adam", schedule="cosine", epochs=1, batch_size=16, shuffle=False,
                          callbacks=[_EachStep()] if each_step else [])
        with monkeypatch.context() as m, pytest.raises(ZeroDivisionError, match="Weights sum to zero"):
            m.setattr(_fused_step, "ENABLED", compiled)
            trainer.fit(X, Y, w)
        out.append((net.params.theta.copy(), trainer.optimizer.t, trainer.step, trainer.optimizer.lr))
    (theta1, *rest1), (theta2, *rest2), (theta3, *rest3) = out
    assert np.array_equal(theta1, theta2) and np.allclose(theta1, theta3, rtol=1e-10, atol=1e-13)
    assert rest1 == rest2 == rest3 and rest1[:2] == [4, 4]   # the numpy step's count and learning rate too
    assert compiled_calls["steps"] == 8


def test_a_run_stopped_between_calls_resumes_to_the_bit(compiled_calls, monkeypatch):
    """A stop requested during a call (Ctrl-C) takes effect after it; fitting again resumes at that row."""
    monkeypatch.setattr(_fused_step, "ROWS_PER_CALL", 64)
    X, Y = _data()
    whole = _net()
    Trainer(whole, optimizer="adam", epochs=2, batch_size=16).fit(X, Y)
    steps = _fused_step.FusedStep.steps
    stopped = {"n": 0}

    def stop_during_the_second_call(self, *args, **kwargs):
        out = steps(self, *args, **kwargs)
        stopped["n"] += 1
        if stopped["n"] == 2:
            trainer.request_stop()
        return out

    net = _net()
    trainer = Trainer(net, optimizer="adam", epochs=2, batch_size=16)
    with monkeypatch.context() as m:
        m.setattr(_fused_step.FusedStep, "steps", stop_during_the_second_call)
        trainer.fit(X, Y)
    assert trainer.history.interrupted and trainer.step == 8 and trainer._pos == 128
    trainer.stop_requested = False                # as Network.fit(warm_start=True) resumes a run
    trainer.fit(X, Y)
    assert trainer.step == 30 and np.array_equal(net.params.theta, whole.params.theta)


@pytest.mark.parametrize("sizes, batch, expected", [((784, 256, 128, 10), 32, 88),    # 6 x 235,146 x 32 operations
                                                    ((784, 256, 128, 10), 512, 5),
                                                    ((20, 8, 3), 32, 128),            # 4096 rows
                                                    ((784, 2048, 2048, 10), 256, 1)])
def test_a_call_takes_at_most_4096_rows_and_a_tenth_of_a_second_of_products(sizes, batch, expected):
    net = FeedForward([Dense(n, "relu") for n in sizes[1:-1]] + [Dense(sizes[-1], "softmax")], loss="nll",
                      n_features=sizes[0], dtype="float32", seed=0)
    X, Y = np.zeros((batch, sizes[0]), np.float32), np.eye(sizes[-1], dtype=np.float32)[np.zeros(batch, int)]
    assert _fused_step.plan(Trainer(net, optimizer="adam"), X, Y, None, batch).max_steps == expected


class _Late(_EachStep):
    """A progress bar's kind of callback: it need not run between steps."""

    between_steps = False


def test_a_callback_that_need_not_run_between_steps_sees_each_step_after_the_run(compiled_calls):
    X, Y = _data()
    seen = []
    for cb in (_EachStep(), _Late()):
        before = dict(compiled_calls)
        Trainer(_net(), optimizer="adam", epochs=3, batch_size=16, callbacks=[cb]).fit(X, Y)
        seen.append((cb.seen, compiled_calls["calls"] - before["calls"], compiled_calls["steps"] - before["steps"]))
    (each, each_calls, each_steps), (late, late_calls, late_steps) = seen
    assert late == each and [s[0] for s in late] == list(range(1, 46))   # (step, rows, loss) of every step
    assert (each_calls, each_steps, late_calls, late_steps) == (45, 45, 3, 45)


def test_the_commands_progress_bar_lets_the_steps_run_many_a_call(compiled_calls, tmp_path, capsys):
    from deepff import cli

    assert cli.main(["train", "--epochs", "2", "--hidden", "8", "--quiet", "--seed", "0",
                     "--output", str(tmp_path / "m.npz")]) == 0
    capsys.readouterr()
    assert 0 < compiled_calls["calls"] < compiled_calls["steps"]


def test_a_lazy_row_order_gives_the_same_runs(compiled_calls, monkeypatch):
    """Past deepff._order.LAZY_ROWS rows the epoch's order is computed slice by slice; runs slice it too."""
    from deepff import _order

    monkeypatch.setattr(_order, "LAZY_ROWS", 100)
    monkeypatch.setattr(_fused_step, "ROWS_PER_CALL", 48)
    one, many = _fit(True, "adam"), _fit(False, "adam")
    _same(many, one)
    assert compiled_calls["calls"] == 45 + 3 * 5                 # 15 steps an epoch: one a call, then three a call


def test_a_real_ctrl_c_during_a_call_stops_the_run_after_it_and_it_resumes_to_the_bit(compiled_calls, monkeypatch):
    """SIGINT arrives while the second call runs (Python's handler then runs when the call returns)."""
    import os
    import signal

    monkeypatch.setattr(_fused_step, "ROWS_PER_CALL", 64)
    X, Y = _data()
    whole = _net()
    Trainer(whole, optimizer="adam", epochs=2, batch_size=16).fit(X, Y)
    real = _kernels.dense_steps_kernel()          # (the fixture's counting kernel)
    sent = {"calls": 0}

    def interrupted(*args):
        sent["calls"] += 1
        if sent["calls"] == 2:
            os.kill(os.getpid(), signal.SIGINT)   # the fit's handler sets its flag at the next bytecode
        return real(*args)

    monkeypatch.setattr(_kernels, "dense_steps_kernel", lambda: interrupted)
    net = _net()
    trainer = Trainer(net, optimizer="adam", epochs=2, batch_size=16)
    trainer.fit(X, Y)
    assert trainer.history.interrupted and trainer.step == 8 and trainer._pos == 128   # after the second call
    trainer.stop_requested = False
    trainer.fit(X, Y)
    assert trainer.step == 30 and np.array_equal(net.params.theta, whole.params.theta)


def test_a_callback_reading_gradients_keeps_one_step_a_call_even_if_it_need_not_run_between(compiled_calls):
    class Reads(_Late):
        reads_gradients = True

    X, Y = _data()
    cb = Reads()
    Trainer(_net(), optimizer="sgd", epochs=1, batch_size=16, callbacks=[cb]).fit(X, Y)
    assert compiled_calls["calls"] == compiled_calls["steps"] == 15 and len(cb.seen) == 15
