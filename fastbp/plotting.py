"""``fastbp.plot_history``: the training curves of a ``fit`` history (needs matplotlib)."""


def plot_history(history, path=None, ax=None):
    """Plot the loss and the other figures of a training history, per epoch, train and validation.

    Parameters
    ----------
    history : dict
        What :meth:`fastbp.MLP.fit` returns (also ``DivergedError.history``).
    path : str or path-like, optional
        Save the figure there (any format matplotlib knows from the suffix).
    ax : sequence of matplotlib Axes, optional
        Draw into these (one per panel: the loss, then accuracy when present)
        instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, fastbp
    >>> X = np.random.default_rng(0).standard_normal((64, 3)); y = (X[:, 0] > 0).astype(int)
    >>> h = fastbp.MLP([3, 8, 2], loss="softmax_cross_entropy", seed=0).fit(X, y, epochs=3, validation_data=(X, y))
    >>> fig = fastbp.plot_history(h)  # doctest: +SKIP
    """
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plot_history needs matplotlib, which is not installed: pip install matplotlib") from None
    if not isinstance(history, dict) or not history.get("loss"):
        raise ValueError("history must be the dict that fit returns, with at least one epoch of 'loss'")
    panels = ["loss"] + [key for key in ("accuracy",) if key in history]
    if ax is None:
        if path is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.4), squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(ax)
        if len(axes) < len(panels):
            raise ValueError(f"ax needs {len(panels)} axes for {panels}, got {len(axes)}")
        fig = axes[0].figure
    epochs = range(1, len(history["loss"]) + 1)
    for axis, key in zip(axes, panels):
        axis.plot(epochs, history[key], marker="o", markersize=3, label=f"train {key}")
        if f"val_{key}" in history:
            axis.plot(range(1, len(history[f"val_{key}"]) + 1), history[f"val_{key}"], marker="s", markersize=3,
                      label=f"validation {key}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(key)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    axes[0].set_title(f"backend {history.get('backend', '?')}", fontsize=9, loc="left")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
