"""Ctrl-C during a long epoch (a child process gets SIGINT), and the progress output inside an epoch."""

import io
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import fastbp
from fastbp import progress, training

PROGRAM = pathlib.Path(__file__).resolve().parent / "programs" / "interrupted_fit.py"


@pytest.mark.parametrize("backend", ["cpu", "parallel", "numpy"])
def test_ctrl_c_stops_a_long_epoch_at_once_and_leaves_a_usable_model(backend):
    out = subprocess.run([sys.executable, str(PROGRAM), backend], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    figures = dict(item.split("=") for item in out.stdout.split())
    assert float(figures["latency"]) < 0.5  # well under a second
    steps, per_epoch, done = int(figures["steps"]), int(figures["batches_per_epoch"]), int(figures["epochs_done"])
    # model.history holds the epochs completed before the interrupt; the steps since are those of the epoch it cut
    assert steps > 0 and done * per_epoch <= steps < (done + 1) * per_epoch
    assert figures["finite"] == figures["predict_ok"] == figures["refit_ok"] == "True"


def _data(n=4000):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 4))
    return X, (X[:, 0] > 0).astype(np.int64)


def test_plain_progress_lines_come_before_the_epoch_ends(monkeypatch, capsys):
    monkeypatch.setattr(progress, "PLAIN_INTERVAL", 0.0)
    monkeypatch.setattr(training, "CALL_SECONDS", 1e-9)  # a call per minibatch: progress after each
    X, y = _data()
    fastbp.MLP([4, 8, 2], loss="softmax_cross_entropy", seed=0).fit(X, y, epochs=1, batch_size=500, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    first_progress = next(i for i, line in enumerate(lines) if re.match(r"epoch 1/1: [\d,]+/4,000 samples", line))
    epoch_line = next(i for i, line in enumerate(lines) if line.startswith("epoch 1/1  loss"))
    assert first_progress < epoch_line
    assert "samples/s" in lines[first_progress] and "loss" in lines[first_progress]


def test_verbose_two_prints_only_the_epoch_lines(monkeypatch, capsys):
    monkeypatch.setattr(progress, "PLAIN_INTERVAL", 0.0)
    monkeypatch.setattr(training, "CALL_SECONDS", 1e-9)
    X, y = _data()
    fastbp.MLP([4, 8, 2], loss="softmax_cross_entropy", seed=0).fit(X, y, epochs=3, batch_size=500, verbose=2)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]


def test_silent_and_bad_verbose(capsys):
    X, y = _data(400)
    model = fastbp.MLP([4, 8, 2], loss="softmax_cross_entropy", seed=0)
    model.fit(X, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="verbose must be 0, 1 or 2"):
        model.fit(X, y, verbose=3)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_a_tqdm_bar():
    pytest.importorskip("tqdm")
    stream = _Terminal()
    bar = progress.Progress(1, epochs=2, n_samples=1000, stream=stream)
    bar.start_epoch(1)
    bar.update(1, 400, 0.5)
    bar.end_epoch(1, {"loss": 0.5, "samples_per_second": 1e6})
    text = stream.getvalue()
    assert "epoch 1/2" in text and "samples" in text and "loss 0.5000" in text and "\r" in text


def test_early_stopping_says_which_weights_it_kept(capsys):
    X, y = _data(600)
    Xv, yv = X[:100], 1 - y[:100]  # a validation set the model can only get worse on
    model = fastbp.MLP([4, 8, 2], loss="softmax_cross_entropy", seed=0)
    history = model.fit(X, y, epochs=30, validation_data=(Xv, yv), patience=2, verbose=2,
                        optimizer=fastbp.Adam(lr=0.05))
    out = capsys.readouterr().out
    stopped = len(history["loss"])
    best = int(np.argmin(history["val_loss"])) + 1
    assert f"early stopping after epoch {stopped}: val_loss has not improved by more than 0 for 2 epochs" in out
    assert f"restored the weights of epoch {best} (val_loss {min(history['val_loss']):.4f})" in out


def test_the_first_fit_says_it_prepares_the_kernels_and_its_rate_leaves_the_compilation_out(capsys):
    code = ("import numpy as np, fastbp\n"
            "X = np.random.default_rng(0).standard_normal((2000, 3)); y = (X[:, 0] > 0).astype(int)\n"
            "h = fastbp.MLP([3, 5, 2], loss='softmax_cross_entropy', seed=0, dtype=np.float64)"
            ".fit(X, y, epochs=2, verbose=2, backend='cpu')\n"
            "print('rates', h['samples_per_second'][0] > 0.2 * h['samples_per_second'][1])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300).stdout
    assert "preparing the training kernels" in out.splitlines()[0]
    assert re.search(r"\.\.\. (compiled in [\d.]+ s|loaded from the kernel cache in [\d.]+ s)", out)
    assert "rates True" in out  # the first epoch's samples/s does not include seconds of compiling
