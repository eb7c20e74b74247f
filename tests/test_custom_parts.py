"""User-defined parts: registering them, training, saving and resuming with them."""

import warnings

import numpy as np
import pytest

import deepff
from deepff.activations import Activation, Tanh
from deepff.errors import SpecError
from deepff.optimizers import SGD
from deepff.schedules import Schedule


@pytest.fixture
def registries():
    """Undo every registration a test makes."""
    regs = [deepff.activations.REGISTRY, deepff.optimizers.REGISTRY, deepff.schedules.REGISTRY]
    before = [dict(r.classes) for r in regs]
    yield
    for r, classes in zip(regs, before):
        r.classes.clear()
        r.classes.update(classes)


class SoftsignReturning(Activation):
    """Right derivative, but returns new arrays instead of writing into ``out``."""

    name = "softsign_returning"

    def forward(self, a, out=None):
        return a / (1 + np.abs(a))

    def backward(self, a, h, g, out=None):
        return g * (1 - np.abs(h)) ** 2


def _regression(n=64):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    return X, np.sin(X[:, :1])


def test_an_activation_that_returns_instead_of_writing_out_still_works(registries):
    deepff.activations.register(SoftsignReturning)
    X, y = _regression()

    def make():
        return deepff.Network([deepff.Dense(8, "softsign_returning"), deepff.Dense(1, "linear")], loss="mse",
                              n_features=3, seed=0, dtype="float64")

    assert deepff.gradcheck(make(), X[:5], y[:5]) < 1e-6
    net = make()
    net.fit(X, y, epochs=20, batch_size=16, optimizer="adam", lr=1e-2)
    h = net.predict(X)
    assert np.isfinite(h).all() and np.mean((h - y[:, 0]) ** 2) < np.var(y)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: type("Inherits", (Tanh,), {}), "needs its own name attribute .*it inherits 'tanh'"),
    (lambda: type("Nameless", (Activation,), {}), "needs its own name attribute"),
    (lambda: type("Aliased", (Activation,), {"name": "identity"}), "'identity' is an alias of 'linear'"),
    (lambda: type("Relu2", (Activation,), {"name": "relu"}), "'relu' is deepff's ReLU"),
])
def test_register_refuses_names_files_could_not_load_back(registries, make, message):
    with pytest.raises(SpecError, match=message):
        deepff.activations.register(make())
    assert deepff.activations.get("relu").__class__.__module__ == "deepff.activations"


def test_register_refuses_another_name_than_the_class_stores(registries):
    cls = type("Scaled", (Tanh,), {"name": "scaled_tanh"})
    for name in ("other_name", 5):
        with pytest.raises(SpecError, match="files store the activation under its class's name 'scaled_tanh'"):
            deepff.activations.register(cls, name=name)
    assert deepff.activations.register(cls, name="Scaled_Tanh") is cls        # the same name, any case
    again = type("Scaled", (Tanh,), {"name": "scaled_tanh"})                  # a notebook cell run twice
    assert deepff.activations.register(again) is again and deepff.activations.REGISTRY.classes["scaled_tanh"] is again


class Halve(Schedule):
    name = "halve_every"

    def __init__(self, every):
        self.every = int(every)

    def lr(self, base_lr, step, epoch):
        return base_lr / 2 ** (epoch // self.every)

    def get_config(self):
        return {"every": self.every}


class ScaledSGD(SGD):
    name = "scaled_sgd"

    def __init__(self, lr, scale=1.0):
        super().__init__(lr=lr)
        self.scale = float(scale)

    def get_config(self):
        return {"lr": self.lr, "scale": self.scale}


def test_a_checkpoint_with_parts_that_need_arguments_loads_and_resumes(registries, tmp_path):
    deepff.schedules.register(Halve)
    deepff.optimizers.register(ScaledSGD)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 4)), rng.integers(0, 3, size=32)

    def fit(epochs, **kw):
        net = deepff.Network([deepff.Dense(8, "tanh"), deepff.Dense(3, "softmax")], loss="nll", seed=1)
        net.fit(X, y, epochs=epochs, optimizer={"name": "scaled_sgd", "lr": 0.1, "scale": 0.5},
                schedule={"name": "halve_every", "every": 1}, **kw)
        return net

    first = fit(2)
    deepff.save_checkpoint(first.trainer_, tmp_path / "c.npz")
    _, state, _ = deepff.load_checkpoint(tmp_path / "c.npz")
    assert state["schedule"]["every"] == 1 and state["optimizer"]["scale"] == 0.5
    resumed = fit(4, resume_state=state)
    np.testing.assert_array_equal(resumed.get_weights(), fit(4).get_weights())


def _softsign(name):
    """A softsign activation class registered under ``name`` (h = a / (1 + |a|))."""
    class Softsign(Activation):
        def forward(self, a, out=None):
            return np.divide(a, 1 + np.abs(a), out=out)

        def backward(self, a, h, g, out=None):
            return np.multiply(g, (1 - np.abs(h)) ** 2, out=out)

    Softsign.name = name
    return Softsign


def test_the_estimators_take_an_activation_registered_after_their_import(registries):
    from deepff.sklearn import MLPClassifier

    deepff.activations.register(_softsign("softsign_late"))
    X, y = _regression(40)
    labels = (y[:, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier(hidden_layer_sizes=(4,), activation="softsign_late", max_iter=5).fit(X, labels)
    assert est._net.layers[0].activation.name == "softsign_late"
    with pytest.raises(ValueError, match="activation takes names .* got the dict"):
        MLPClassifier(hidden_layer_sizes=(4,), activation={"name": "leaky_relu", "slope": 0.2}).fit(X, labels)


def test_loading_a_file_of_an_unregistered_custom_activation_says_to_register_it(registries, tmp_path):
    Softsign = _softsign("softsign_saved")
    deepff.activations.register(Softsign)
    net = deepff.Network([deepff.Dense(4, "softsign_saved"), deepff.Dense(2, "softmax")], loss="nll",
                         n_features=3, seed=0)
    deepff.save(net, tmp_path / "m.npz")
    del deepff.activations.REGISTRY.classes["softsign_saved"]     # a new process, without the registration
    with pytest.raises(deepff.errors.ModelFileError, match=r"unknown activation 'softsign_saved'.*a custom "
                                                           r"activation must be registered"):
        deepff.load(tmp_path / "m.npz")
    deepff.activations.register(Softsign)                          # registered again, the file loads
    np.testing.assert_array_equal(deepff.load(tmp_path / "m.npz").get_weights(), net.get_weights())
