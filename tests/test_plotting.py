"""fastbp.plot_history (fastbp/plotting.py)."""

import numpy as np
import pytest

import fastbp

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def _history(loss="softmax_cross_entropy", validation=True):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    y = (X[:, 0] > 0).astype(int) if loss != "mse" else X[:, :1]
    model = fastbp.MLP([3, 8, 2 if loss != "mse" else 1], loss=loss, seed=0)
    return model.fit(X, y, epochs=4, batch_size=16, validation_data=(X, y) if validation else None)


def test_plots_loss_and_accuracy_train_and_validation(tmp_path):
    path = tmp_path / "curves.png"
    fig = fastbp.plot_history(_history(), path=path)
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["train loss", "validation loss"]
    assert [line.get_label() for line in acc_ax.lines] == ["train accuracy", "validation accuracy"]
    assert list(loss_ax.lines[0].get_xdata()) == [1, 2, 3, 4]
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"


def test_regression_without_validation_has_one_panel():
    fig = fastbp.plot_history(_history("mse", validation=False))
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == ["train loss"]


def test_refuses_what_is_not_a_history():
    with pytest.raises(ValueError, match="history must be the dict that fit returns"):
        fastbp.plot_history({"loss": []})
