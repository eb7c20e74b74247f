"""deepff.optimizers against torch.optim, 20 steps in float64.

Both optimizers receive the *same* gradient at every step (computed in
numpy from deepff's parameters), so any difference comes from the update
rules alone. Cases with ``lr_schedule`` change the learning rate between
steps (``opt.lr = ...`` here, ``param_groups[0]["lr"] = ...`` in torch).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from _needs import require_module
from deepff import optimizers

torch = require_module("torch", area="PyTorch parity")

N_STEPS = 20
N_PARAMS = 11

TORCH_CLASSES = {
    "sgd": "SGD",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "adamw": "AdamW",
}

# (name, hyperparameters, change lr between steps?)
CASES = [
    ("sgd", {"lr": 0.05}, False),
    ("sgd", {"lr": 0.05, "momentum": 0.9}, False),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}, False),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}, False),
    ("sgd", {"lr": 0.05, "weight_decay": 0.1}, False),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}, True),
    ("adagrad", {"lr": 0.3}, False),
    ("adagrad", {"lr": 0.3, "lr_decay": 0.05}, False),
    ("adagrad", {"lr": 0.3, "weight_decay": 0.1, "initial_accumulator_value": 0.5}, False),
    ("adagrad", {"lr": 0.3, "lr_decay": 0.05, "eps": 1e-4}, True),
    ("rmsprop", {"lr": 0.01}, False),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "centered": True}, False),
    ("rmsprop", {"lr": 0.01, "momentum": 0.6}, False),
    ("rmsprop", {"lr": 0.01, "weight_decay": 0.1, "eps": 1e-4}, False),
    ("rmsprop", {"lr": 0.01, "alpha": 0.8, "momentum": 0.5, "centered": True, "weight_decay": 0.1}, True),
    ("adam", {"lr": 0.05}, False),
    ("adam", {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-4}, False),
    ("adam", {"lr": 0.05, "weight_decay": 0.1}, False),
    ("adam", {"lr": 0.05, "betas": (0.9, 0.5), "amsgrad": True}, False),
    ("adam", {"lr": 0.05, "betas": (0.9, 0.5), "amsgrad": True, "weight_decay": 0.1}, True),
    ("adamw", {"lr": 0.05}, False),
    ("adamw", {"lr": 0.05, "weight_decay": 0.3}, False),
    ("adamw", {"lr": 0.05, "betas": (0.9, 0.5), "amsgrad": True, "weight_decay": 0.3}, False),
    ("adamw", {"lr": 0.05, "weight_decay": 0.3}, True),
]


def case_id(case):
    name, kw, scheduled = case
    parts = [name] + [f"{k}={v}" for k, v in kw.items() if k != "lr"] + (["lr_schedule"] if scheduled else [])
    return "-".join(parts).replace(" ", "")


def gradient(theta, c):
    # a fixed nonlinear function of theta, with a minimum away from 0
    return c * (theta - 0.3) + 0.1 * np.sin(3.0 * theta)


def lr_at(base, step):
    # an arbitrary, non-monotone sequence of learning rates
    return base * (1.0 + 0.5 * np.sin(step)) / (1.0 + 0.1 * step)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_torch_optim(case):
    name, kw, scheduled = case
    rng = np.random.default_rng(1234)
    c = rng.uniform(0.2, 3.0, N_PARAMS)
    theta0 = rng.normal(0.0, 1.5, N_PARAMS)

    ours = optimizers.get({"name": name, **kw})
    theta = theta0.copy()

    param = torch.tensor(theta0.copy(), dtype=torch.float64, requires_grad=True)
    theirs = getattr(torch.optim, TORCH_CLASSES[name])([param], **kw)

    for step in range(N_STEPS):
        if scheduled:
            ours.lr = lr_at(kw["lr"], step)
            theirs.param_groups[0]["lr"] = ours.lr
        g = gradient(theta, c)
        ours.step(theta, g)
        param.grad = torch.from_numpy(g.copy())
        theirs.step()

    expected = param.detach().numpy()
    assert np.max(np.abs(theta - theta0)) > 0.1  # the run actually moved
    assert_allclose(theta, expected, rtol=1e-6, atol=1e-8)
    # in practice the two agree to rounding error
    assert_allclose(theta, expected, rtol=1e-9, atol=1e-11)


def test_number_of_cases():
    assert len(CASES) >= 15
    assert {name for name, _, _ in CASES} == set(TORCH_CLASSES)
