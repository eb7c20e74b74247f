"""Each plot function writes a real, non-blank PNG (headless)."""

import numpy as np
import pytest

from _needs import require_module

require_module("matplotlib", area="plots (matplotlib)")

from deepff import plots  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path, min_bytes=10_000):
    """A valid PNG, not tiny, and not a single colour."""
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > min_bytes
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    rgb = img[..., :3]
    assert rgb.std() > 0.02
    colours = np.unique((rgb.reshape(-1, 3) * 255).round().astype(np.uint8), axis=0)
    assert len(colours) > 20
    return rgb


def records(n, val=True, acc=True):
    out = []
    for e in range(1, n + 1):
        r = {"epoch": e, "loss": 2.0 / e, "seconds": 0.1}
        if acc:
            r["accuracy"] = 1 - 0.5 / e
        if val:
            r["val_loss"] = 2.2 / e
            if acc:
                r["val_accuracy"] = 1 - 0.6 / e
        out.append(r)
    return out


@pytest.mark.parametrize("val,acc", [(True, True), (False, True), (True, False), (False, False)])
def test_plot_history(tmp_path, val, acc):
    path = tmp_path / "h.png"
    plots.plot_history(records(6, val, acc), path, title="t", val_label="test")
    check_png(path)


def test_plot_history_tolerates_missing_values(tmp_path):
    recs = records(4)
    recs[1]["val_loss"] = None
    del recs[2]["val_accuracy"]
    path = tmp_path / "h.png"
    plots.plot_history(recs, str(path))
    check_png(path)


def test_plot_history_single_epoch(tmp_path):
    path = tmp_path / "h.png"
    plots.plot_history(records(1), path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize("k", [3, 31])
def test_plot_confusion_matrix(tmp_path, k):
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 5, size=(k, k)) + np.diag(rng.integers(20, 40, size=k))
    path = tmp_path / "cm.png"
    plots.plot_confusion_matrix(cm, [f"class {i}" for i in range(k)], path)
    check_png(path)


def test_plot_decision_boundary_classification_colours_match(tmp_path):
    """The background of each class region is a pale tint of that class's scatter colour."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 2)) * 3

    def predict(Z):
        return (Z[:, 0] > 0).astype(int) + (Z[:, 1] > 0).astype(int)  # classes 0, 1, 2

    path = tmp_path / "b.png"
    plots.plot_decision_boundary(predict, X, predict(X), path, class_names=["a", "b", "c"],
                                 feature_names=["x1", "x2"])
    rgb = check_png(path)
    colours = plots.class_colors(3)
    # the blended background colour of class 0 (alpha 0.3 over white) occurs in the image
    tint = 0.3 * np.array(colours[0][:3]) + 0.7
    assert (np.abs(rgb - tint).max(axis=-1) < 0.03).mean() > 0.05


def test_plot_decision_boundary_regression_and_unlabelled(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(80, 2))

    def f(Z):
        return np.sin(Z[:, 0]) + Z[:, 1]

    path = tmp_path / "r.png"
    plots.plot_decision_boundary(f, X, f(X), path, task="regression", target_name="y")
    check_png(path)
    path2 = tmp_path / "u.png"
    plots.plot_decision_boundary(lambda Z: (Z[:, 0] > 0).astype(int), X, None, path2)
    check_png(path2)


def test_plot_decision_boundary_rejects_wrong_width(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        plots.plot_decision_boundary(lambda Z: Z[:, 0], np.zeros((5, 3)), None, tmp_path / "x.png")


def test_plot_history_takes_a_history_and_refuses_what_is_not_one(tmp_path):
    from deepff import InputError
    from deepff.training import History

    plots.plot_history(History(records(3)), tmp_path / "h.png")      # used to loop forever
    check_png(tmp_path / "h.png")
    for bad, match in (({"loss": [1, 2]}, "got dict"), ([1, 2], "got list"), ([], "no epoch")):
        with pytest.raises(InputError, match=match):
            plots.plot_history(bad, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_plot_arguments_are_checked_before_drawing(tmp_path):
    from deepff import InputError

    with pytest.raises(InputError, match="3 class names for a 2 x 2 matrix"):
        plots.plot_confusion_matrix([[3, 1], [0, 4]], ["a", "b", "c"], tmp_path / "cm.png")
    with pytest.raises(InputError, match="square matrix"):
        plots.plot_confusion_matrix([3, 1, 0, 4], ["a", "b"], tmp_path / "cm.png")
    with pytest.raises(InputError, match="unknown task 'classif'; valid choices: 'classification', 'regression'"):
        plots.plot_decision_boundary(lambda Z: Z[:, 0], np.zeros((5, 2)), None, tmp_path / "db.png",
                                     task="classif")
    assert list(tmp_path.iterdir()) == []


def test_class_colors_distinct():
    for k in (2, 10, 20, 40):
        c = plots.class_colors(k)
        assert len(c) == k and len(set(c)) == k


@pytest.mark.parametrize("n", [1, 2, 7])
def test_history_epoch_ticks_are_whole_numbers(tmp_path, monkeypatch, n):
    saved = []
    real_save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (saved.append(fig), real_save(fig, path)))
    plots.plot_history(records(n), tmp_path / "h.png")
    for ax in saved[0].axes:
        lo, hi = ax.get_xlim()
        shown = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert shown and all(float(t).is_integer() for t in shown), shown
    check_png(tmp_path / "h.png")
