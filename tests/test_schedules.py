"""Learning-rate schedules: hand-computed values, plateau logic, state, errors."""

import json
import math
import warnings

import numpy as np
import pytest

import deepff
from _needs import require_module
from deepff import schedules
from deepff.errors import ModelFileError, SpecError
from deepff.schedules import Constant, Cosine, ExponentialDecay, InvScaling, Plateau, Schedule, StepDecay


def test_constant():
    s = Constant()
    assert [s.lr(0.1, step, epoch) for step, epoch in [(0, 0), (7, 1), (10_000, 99)]] == [0.1, 0.1, 0.1]


def test_step_decay():
    s = StepDecay(step_size=3, gamma=0.5)
    got = [s.lr(2.0, 0, epoch) for epoch in range(8)]
    assert got == [2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 0.5, 0.5]
    assert StepDecay().lr(1.0, 0, 25) == pytest.approx(0.01, rel=1e-15)  # defaults 10, 0.1


def test_step_decay_ignores_step_count():
    s = StepDecay(step_size=1, gamma=0.5)
    assert s.lr(1.0, 0, 2) == s.lr(1.0, 999, 2) == 0.25


def test_exponential():
    s = ExponentialDecay(gamma=0.9)
    assert s.lr(1.0, 0, 0) == 1.0
    assert s.lr(1.0, 50, 1) == pytest.approx(0.9, rel=1e-15)
    assert s.lr(2.0, 0, 3) == pytest.approx(2.0 * 0.729, rel=1e-15)


def test_cosine_with_warmup():
    s = Cosine(total_steps=12, warmup_steps=4, min_lr=0.1)
    # warm-up: 0 + (1 - 0) * s / 4
    assert s.lr(1.0, 0, 0) == 0.0
    assert s.lr(1.0, 1, 0) == 0.25
    assert s.lr(1.0, 2, 0) == 0.5
    assert s.lr(1.0, 3, 0) == 0.75
    # annealing over steps 4..12: p = (s - 4) / 8
    assert s.lr(1.0, 4, 1) == pytest.approx(1.0, rel=1e-15)
    assert s.lr(1.0, 6, 1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.sqrt(0.5)), rel=1e-14)
    assert s.lr(1.0, 8, 1) == pytest.approx(0.55, rel=1e-14)  # p = 1/2: halfway between 1 and 0.1
    assert s.lr(1.0, 10, 2) == pytest.approx(0.1 + 0.9 * 0.5 * (1 - math.sqrt(0.5)), rel=1e-14)
    assert s.lr(1.0, 12, 2) == 0.1
    assert s.lr(1.0, 100, 9) == 0.1


def test_cosine_warmup_start_and_no_warmup():
    s = Cosine(total_steps=10, warmup_steps=2, warmup_start=0.2)
    assert s.lr(1.0, 0, 0) == pytest.approx(0.2)
    assert s.lr(1.0, 1, 0) == pytest.approx(0.6)
    plain = Cosine(total_steps=4)
    got = [plain.lr(2.0, k, 0) for k in range(6)]
    expected = [2.0, 1.0 + math.sqrt(0.5), 1.0, 1.0 - math.sqrt(0.5), 0.0, 0.0]
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-15)


def test_cosine_needs_total_steps():
    s = Cosine()
    with pytest.raises(SpecError, match="total_steps"):
        s.lr(1.0, 0, 0)
    s.total_steps = 10  # the training loop may fill it in
    assert s.lr(1.0, 0, 0) == 1.0


def test_invscaling_per_step():
    s = InvScaling(power_t=0.5)
    assert s.lr(0.1, 0, 0) == 0.1
    assert s.lr(0.1, 3, 0) == pytest.approx(0.05, rel=1e-15)
    assert s.lr(0.1, 8, 5) == pytest.approx(0.1 / 3, rel=1e-15)
    assert InvScaling(power_t=1.0).lr(1.0, 4, 0) == pytest.approx(0.2, rel=1e-15)
    assert InvScaling(power_t=0.0).lr(1.0, 4, 0) == 1.0


def test_invscaling_per_sample_and_epoch():
    s = InvScaling(power_t=0.5, per="sample", batch_size=8)
    assert s.lr(0.1, 0, 0) == 0.1
    assert s.lr(0.1, 3, 0) == pytest.approx(0.1 / 5, rel=1e-15)  # t = 24 samples seen
    e = InvScaling(power_t=0.5, per="epoch", n_samples=99)
    assert e.lr(0.1, 0, 0) == e.lr(0.1, 7, 0) == 0.1  # constant within an epoch
    assert e.lr(0.1, 13, 1) == pytest.approx(0.01, rel=1e-15)  # t = 99
    assert e.lr(0.1, 26, 2) == pytest.approx(0.1 / math.sqrt(199), rel=1e-15)


# --------------------------------------------------------------------- plateau
def feed(schedule, losses, base=1.0):
    """lr in force during each epoch, then after the last one."""
    lrs = []
    for epoch, loss in enumerate(losses):
        lrs.append(schedule.lr(base, 0, epoch))
        schedule.epoch_end(epoch, loss)
    lrs.append(schedule.lr(base, 0, len(losses)))
    return lrs


def test_plateau_reduces_after_two_stalled_epochs():
    s = Plateau(factor=5.0, tol=0.01, n_iter_no_change=2, min_lr=0.0)
    losses = [
        1.0,    # first epoch: improvement by definition, best = 1.0
        0.9,    # improved by 0.1
        0.895,  # < best but not by tol: bad 1, best = 0.895
        0.89,   # 0.89 > 0.895 - 0.01: bad 2 -> reduce (lr 0.2), bad 0, best = 0.89
        0.5,    # improved
        0.6,    # worse: bad 1
        0.49,   # not by tol (0.5 - 0.01 = 0.49 is the limit: <= counts): improved, bad 0
        0.485,  # bad 1
        0.484,  # bad 2 -> reduce (lr 0.04)
    ]
    lrs = feed(s, losses)
    expected = [1.0, 1.0, 1.0, 1.0, 0.2, 0.2, 0.2, 0.2, 0.2, 0.04]
    np.testing.assert_allclose(lrs, expected, rtol=1e-15)
    assert s.n_reductions == 2 and s.best_loss == 0.484 and s.bad_epochs == 0


def test_plateau_counts_only_consecutive_epochs():
    s = Plateau(tol=0.0, n_iter_no_change=3, min_lr=0.0)
    lrs = feed(s, [5.0, 5.1, 5.2, 4.0, 4.1, 4.2, 4.3])
    # bad at epochs 1, 2; reset at 3; bad at 4, 5, 6 -> reduce after epoch 6
    assert lrs == [1.0] * 7 + [pytest.approx(0.2)]


def test_plateau_floor_and_exhausted():
    s = Plateau(factor=10.0, tol=0.0, n_iter_no_change=1, min_lr=0.003)
    lrs = feed(s, [1.0, 2.0, 3.0, 4.0, 5.0])
    # 1 -> 0.1 -> 0.01 -> 0.001 clamped to 0.003 -> held, exhausted
    np.testing.assert_allclose(lrs, [1.0, 1.0, 0.1, 0.01, 0.003, 0.003], rtol=1e-14)
    assert s.exhausted and s.n_reductions == 3


def test_plateau_nan_is_not_an_improvement():
    s = Plateau(tol=0.0, n_iter_no_change=2, min_lr=0.0)
    lrs = feed(s, [1.0, float("nan"), float("nan")])
    assert lrs[-1] == pytest.approx(0.2)
    assert s.best_loss == 1.0


def test_plateau_scales_a_changed_base_lr():
    s = Plateau(tol=0.0, n_iter_no_change=1, min_lr=0.0)
    feed(s, [1.0, 2.0])
    assert s.lr(0.5, 0, 2) == pytest.approx(0.1)


def test_plateau_equal_loss_with_zero_tol_is_an_improvement():
    # "improved by at least tol": with tol = 0 an unchanged loss counts (as in scikit-learn)
    s = Plateau(tol=0.0, n_iter_no_change=1, min_lr=0.0)
    assert feed(s, [1.0, 1.0, 1.0]) == [1.0] * 4


def test_adaptive_alias():
    assert isinstance(schedules.get("adaptive"), Plateau)
    assert Plateau().get_config() == {"factor": 5.0, "tol": 1e-4, "n_iter_no_change": 2, "min_lr": 1e-6}


def _sklearn_fit(**kw):
    nn = require_module("sklearn.neural_network", area="scikit-learn")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.sin(X[:, 0]) + 0.3 * rng.normal(size=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = nn.MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.05, batch_size=20,
                                random_state=0, momentum=0.0, **kw).fit(X, y)
    if not hasattr(getattr(model, "_optimizer", None), "learning_rate"):
        pytest.skip("this scikit-learn does not expose _optimizer.learning_rate")
    return model


def test_plateau_reproduces_sklearn_adaptive():
    # scikit-learn reduces when its count *exceeds* n_iter_no_change: k there is k + 1 here.
    model = _sklearn_fit(learning_rate="adaptive", tol=3e-3, n_iter_no_change=3, max_iter=40)
    assert model.n_iter_ == 40  # ran to max_iter: never hit its 1e-6 stop
    s = Plateau(tol=3e-3, n_iter_no_change=4)
    lrs = feed(s, model.loss_curve_, base=0.05)
    assert s.n_reductions >= 2
    assert lrs[-1] == pytest.approx(model._optimizer.learning_rate, rel=1e-12)


def test_plateau_exhausted_where_sklearn_stops():
    model = _sklearn_fit(learning_rate="adaptive", tol=1e-2, n_iter_no_change=1, max_iter=100)
    assert model.n_iter_ < 100  # scikit-learn stopped: a reduction was due at lr <= 1e-6
    s = Plateau(tol=1e-2, n_iter_no_change=2)
    feed(s, model.loss_curve_[:-1], base=0.05)
    assert not s.exhausted
    s.epoch_end(model.n_iter_ - 1, model.loss_curve_[-1])
    assert s.exhausted
    # same number of divisions by 5; scikit-learn's last one went below 1e-6, ours stops at min_lr
    assert 0.05 / 5**s.n_reductions == pytest.approx(model._optimizer.learning_rate, rel=1e-12)
    assert s.lr(0.05, 0, 0) == 1e-6


def test_invscaling_per_epoch_reproduces_sklearn():
    model = _sklearn_fit(learning_rate="invscaling", power_t=0.5, max_iter=7)
    s = InvScaling(power_t=0.5, per="epoch", n_samples=60)
    # after 7 epochs scikit-learn holds the rate for the 8th (epoch index 7)
    assert s.lr(0.05, 0, model.n_iter_) == pytest.approx(model._optimizer.learning_rate, rel=1e-14)


# -------------------------------------------------------------------- state
SCHEDULE_CASES = [
    {"name": "constant"},
    {"name": "step", "step_size": 3, "gamma": 0.5},
    {"name": "exponential", "gamma": 0.9},
    {"name": "cosine", "total_steps": 100, "warmup_steps": 10, "min_lr": 1e-4, "warmup_start": 1e-3},
    {"name": "invscaling", "power_t": 0.25, "per": "sample", "batch_size": 16},
    {"name": "plateau", "factor": 2.0, "tol": 0.01, "n_iter_no_change": 2, "min_lr": 1e-3},
]


@pytest.mark.parametrize("spec", SCHEDULE_CASES, ids=lambda d: d["name"])
def test_state_round_trip(spec):
    losses = [1.0, 0.99, 0.985, 0.98, 0.5, 0.5, 0.5, 0.5, 0.4]
    a = schedules.get(dict(spec))
    feed(a, losses[:5])
    state = json.loads(json.dumps(a.state_dict()))
    assert state["name"] == spec["name"]
    b = schedules.get(spec["name"] if spec["name"] != "cosine" else {"name": "cosine", "total_steps": 5})
    b.load_state_dict(state)
    assert b.get_config() == a.get_config()
    rest_a = [a.lr(0.1, k, e) for e, k in enumerate(range(5, 60, 7))]
    rest_b = [b.lr(0.1, k, e) for e, k in enumerate(range(5, 60, 7))]
    assert feed(a, losses[5:]) == feed(b, losses[5:])
    assert rest_a == rest_b


def test_plateau_state_contents():
    s = Plateau(tol=0.0, n_iter_no_change=1, min_lr=0.0)
    feed(s, [1.0, 2.0])
    state = s.state_dict()
    assert state["best_loss"] == 1.0 and state["n_reductions"] == 1 and state["scale"] == 0.2
    fresh = Plateau()
    fresh.load_state_dict(state)
    assert fresh.lr(1.0, 0, 2) == pytest.approx(0.2)


def test_load_state_rejects_other_schedule():
    with pytest.raises(ModelFileError, match="constant"):
        StepDecay().load_state_dict(Constant().state_dict())


@pytest.mark.parametrize("spec", SCHEDULE_CASES, ids=lambda d: d["name"])
def test_get_config_rebuilds(spec):
    s = schedules.get(dict(spec))
    assert type(s)(**s.get_config()).get_config() == s.get_config()
    assert isinstance(s, Schedule)


# ------------------------------------------------------------------- errors
def test_names():
    assert {"constant", "step", "exponential", "cosine", "invscaling", "plateau", "adaptive"} <= set(
        schedules.names()
    )


def test_unknown_name_lists_choices():
    with pytest.raises(SpecError) as err:
        schedules.get("linear_warmup")
    for name in ("'constant'", "'cosine'", "'plateau'", "'adaptive'", "'invscaling'"):
        assert name in str(err.value)


BAD = [
    ({"name": "step", "step_size": 0}, "step_size"),
    ({"name": "step", "step_size": 2.5}, "step_size"),
    ({"name": "step", "gamma": -0.1}, "gamma"),
    ({"name": "step", "gamma": 0}, "gamma"),
    ({"name": "exponential", "gamma": -1}, "gamma"),
    ({"name": "exponential", "gamma": float("inf")}, "gamma"),
    ({"name": "cosine", "total_steps": 0}, "total_steps"),
    ({"name": "cosine", "total_steps": 10, "warmup_steps": 11}, "warmup_steps"),
    ({"name": "cosine", "total_steps": 10, "warmup_steps": -1}, "warmup_steps"),
    ({"name": "cosine", "total_steps": 10, "min_lr": -1e-3}, "min_lr"),
    ({"name": "invscaling", "power_t": -0.5}, "power_t"),
    ({"name": "invscaling", "per": "batch"}, "per"),
    ({"name": "plateau", "factor": 1.0}, "factor"),
    ({"name": "plateau", "tol": -1}, "tol"),
    ({"name": "plateau", "n_iter_no_change": 0}, "n_iter_no_change"),
    ({"name": "plateau", "min_lr": -1}, "min_lr"),
    ({"name": "constant", "gamma": 0.5}, "schedule .constant. has no parameter .gamma.; valid parameters: none"),
]


@pytest.mark.parametrize("spec,param", BAD, ids=[f"{s['name']}-{p}-{i}" for i, (s, p) in enumerate(BAD)])
def test_bad_parameters(spec, param):
    with pytest.raises(SpecError, match=param) as err:
        schedules.get(spec)
    assert spec["name"] in str(err.value)


def test_error_message_gives_range():
    with pytest.raises(SpecError, match=r"step schedule step_size must be an integer >= 1, got 0"):
        StepDecay(step_size=0)
    with pytest.raises(SpecError, match=r"plateau schedule factor must be > 1, got 0.5"):
        Plateau(factor=0.5)


@pytest.mark.parametrize(("per", "expected_t"), [("epoch", 2 * 48), ("sample", 8 * 16)])
def test_invscaling_takes_the_run_sizes_from_the_trainer(per, expected_t):
    """48 training samples (64 less a 25% validation split), batch 16: 3 steps an epoch, 3 epochs."""
    with pytest.raises(SpecError, match="needs"):
        schedules.get({"name": "invscaling", "per": per}).lr(0.1, 1, 1)   # unbound: no size to count with
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    net = deepff.Network([deepff.Dense(2, "softmax")], loss="nll", seed=0)
    net.fit(X, (X[:, 0] > 0).astype(int), epochs=3, batch_size=16, optimizer="sgd", lr=0.1,
            validation_split=0.25, schedule={"name": "invscaling", "per": per, "power_t": 0.5})
    # the last step (step 8, epoch 2) ran at lr = 0.1 / (t + 1) ** 0.5
    assert net.trainer_.optimizer.lr == pytest.approx(0.1 / (expected_t + 1) ** 0.5, rel=1e-12)
    assert net.trainer_.schedule.get_config()["n_samples"] is None     # the config stays as given


def test_plateau_watches_any_record_entry_upward_or_downward():
    p = Plateau(factor=2.0, tol=0.0, n_iter_no_change=2, monitor="val_score", mode="max")
    for score in (0.5, 0.6, 0.59, 0.55):    # improved, improved, stalled, stalled: one reduction
        p.epoch_end(0, score)
    assert p.n_reductions == 1 and p.lr(1.0, 0, 0) == 0.5
    with pytest.raises(SpecError, match=r"plateau schedule mode must be one of 'min', 'max', got 'up'"):
        Plateau(mode="up")
    assert Plateau().get_config() == {"factor": 5.0, "tol": 1e-4, "n_iter_no_change": 2, "min_lr": 1e-6}


def test_plateau_may_divide_below_min_lr_as_sklearn_does():
    held, free = Plateau(factor=5.0, tol=0.0, n_iter_no_change=1, min_lr=1e-6), \
        Plateau(factor=5.0, tol=0.0, n_iter_no_change=1, min_lr=1e-6, hold_min_lr=False)
    for p in (held, free):
        p.lr(2e-6, 0, 0)
        p.epoch_end(0, 1.0)
        p.epoch_end(1, 2.0)                  # a stall: 2e-6 > min_lr, so divide
    assert held.lr(2e-6, 0, 0) == 1e-6 and free.lr(2e-6, 0, 0) == pytest.approx(4e-7)


def test_the_trainer_feeds_plateau_the_entry_it_monitors():
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = X[:, 0] * 2.0
    net = deepff.Network([deepff.Dense(1)], loss="mse", seed=0)
    seen = []

    class Spy(Plateau):
        def epoch_end(self, epoch, train_loss):
            seen.append(train_loss)
            super().epoch_end(epoch, train_loss)

    history = net.fit(X, y, epochs=3, batch_size=10, schedule=Spy(monitor="val_loss"), validation_split=0.25)
    assert seen == history["val_loss"] and seen != history["loss"]


def test_invscaling_per_epoch_counts_the_samples_of_runs_of_any_size():
    s = InvScaling(power_t=0.5, per="epoch")
    s.bind(100, 10)
    assert s.lr(1.0, 0, 0) == 1.0
    s.epoch_end(0, 0.0)
    s.bind(30, 10)                          # a second run on 30 rows (as partial_fit calls are)
    assert s.lr(1.0, 10, 1) == pytest.approx(1 / 101 ** 0.5)
    s.epoch_end(1, 0.0)
    assert s.seen == 130 and s.lr(1.0, 13, 2) == pytest.approx(1 / 131 ** 0.5)
    state = s.state_dict()
    old = {k: v for k, v in state.items() if k != "seen"}   # a state saved before "seen" existed
    t = InvScaling(power_t=0.5, per="epoch")
    t.load_state_dict(old)
    t.bind(100, 10)
    assert t.seen is None and t.lr(1.0, 0, 3) == pytest.approx(1 / 301 ** 0.5)   # epoch * n, as before
    t.load_state_dict(state)
    assert t.seen == 130
