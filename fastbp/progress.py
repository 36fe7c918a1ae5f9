"""What ``fit(verbose=...)`` prints: a bar inside each epoch, a line per epoch, or nothing.

Keras's convention: ``verbose=0`` is silent, ``verbose=2`` prints one line
per epoch, and ``verbose=1`` (or ``True``) shows a progress bar inside each
epoch with samples per second and the running loss, then the epoch's line.
The bar is tqdm's (``pip install tqdm``; ``tqdm.auto`` draws a widget in a
notebook). Without tqdm, or when the output is not a terminal or a notebook
(a file, a pipe, a CI log), nothing is redrawn: a plain progress line is
written at most every ``PLAIN_INTERVAL`` seconds of a long epoch, and the
epoch's line at its end.
"""

import sys
import time

#: Seconds between two plain progress lines of one epoch, where no bar can be drawn.
PLAIN_INTERVAL = 10.0


def _interactive(stream):
    """Whether a bar can redraw itself on ``stream``: a terminal, or a notebook's output."""
    if "ipykernel" in sys.modules:
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def epoch_line(ep, epochs, logs):
    """One line of ``verbose`` output: the epoch, each figure of ``logs`` and samples per second."""
    parts = [f"epoch {ep:>{len(str(epochs))}}/{epochs}"]
    for key, value in logs.items():
        if key == "samples_per_second":
            parts.append(f"{value:,.0f} samples/s")
        else:
            parts.append(f"{key} {value:.4f}")
    return "  ".join(parts)


class Progress:
    """The progress output of one ``fit``.

    Parameters
    ----------
    verbose : {0, 1, 2} or bool
    epochs : int
    n_samples : int
        Samples per epoch.
    stream : file-like, default sys.stdout
    """

    def __init__(self, verbose, epochs, n_samples, stream=None):
        if isinstance(verbose, bool):
            verbose = int(verbose)
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2 (or a bool), got {verbose!r}")
        self.verbose = verbose
        self.epochs = epochs
        self.n_samples = n_samples
        self.stream = sys.stdout if stream is None else stream
        self.bar = None
        tqdm = _tqdm() if verbose == 1 and _interactive(self.stream) else None
        self._tqdm = tqdm
        self._last_plain = 0.0
        self._t0 = 0.0

    def message(self, text):
        """A line of its own (a notice, early stopping), when not silent."""
        if self.verbose:
            if self.bar is not None:
                self.bar.write(text, file=self.stream)
            else:
                print(text, file=self.stream, flush=True)

    def start_epoch(self, ep):
        """Epoch ``ep`` (from 1) begins."""
        self._t0 = self._last_plain = time.perf_counter()
        if self._tqdm is not None:
            self.bar = self._tqdm(total=self.n_samples, desc=f"epoch {ep}/{self.epochs}", unit=" samples",
                                  unit_scale=True, leave=False, file=self.stream, dynamic_ncols=True)

    def update(self, ep, seen, running_loss):
        """``seen`` samples of epoch ``ep`` are done; the mean loss so far is ``running_loss``."""
        if self.verbose != 1:
            return
        if self.bar is not None:
            self.bar.update(seen - self.bar.n)
            self.bar.set_postfix_str(f"loss {running_loss:.4f}", refresh=False)
            return
        now = time.perf_counter()
        if now - self._last_plain >= PLAIN_INTERVAL and seen < self.n_samples:
            self._last_plain = now
            rate = seen / (now - self._t0) if now > self._t0 else float("inf")
            done = 100 * seen / self.n_samples
            print(f"epoch {ep}/{self.epochs}: {seen:,}/{self.n_samples:,} samples ({done:.0f} %), "
                  f"{rate:,.0f} samples/s, loss {running_loss:.4f}", file=self.stream, flush=True)

    def end_epoch(self, ep, logs):
        """Epoch ``ep`` is done, with the figures ``logs``."""
        self.close_bar()
        if self.verbose:
            print(epoch_line(ep, self.epochs, logs), file=self.stream, flush=True)

    def close_bar(self):
        """Take down the bar of an epoch that ends (or is interrupted)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
