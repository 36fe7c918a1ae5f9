"""fastbp.sklearn.MLPClassifier.fit against scikit-learn's MLPClassifier.fit on digits, with the same settings.

Both estimators get the same float32 digits (1797 x 64, 10 classes), the same parameters and a fixed
number of epochs (``n_iter_no_change=max_iter`` so neither stops early). Skipped (NotImplementedError in
setup) where scikit-learn, or a fastbp without ``fastbp.sklearn``, is installed.
"""

import time
import warnings

SETTINGS = {"hidden_layer_sizes": (100,), "max_iter": 20, "n_iter_no_change": 20, "random_state": 0}


def _estimators():
    try:
        from sklearn.neural_network import MLPClassifier as SklearnMLP

        from fastbp.sklearn import MLPClassifier as FastbpMLP
    except ImportError as exc:
        raise NotImplementedError(f"scikit-learn or fastbp.sklearn is missing: {exc}")
    return {"fastbp": FastbpMLP, "sklearn": SklearnMLP}


def _digits():
    from fastbp.datasets import load_digits

    return load_digits()


def _fit(cls, X, y, solver, batch_size):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter is reached on purpose
        return cls(solver=solver, batch_size=batch_size, **SETTINGS).fit(X, y)


class EstimatorFit:
    """Time of one ``fit`` (20 epochs) of each implementation."""

    params = [["fastbp", "sklearn"], ["adam", "sgd"], ["auto", 32]]
    param_names = ["implementation", "solver", "batch_size"]
    timeout = 300

    def setup(self, implementation, solver, batch_size):
        self.cls = _estimators()[implementation]
        self.X, self.y = _digits()
        _fit(self.cls, self.X, self.y, solver, batch_size)  # compile / warm up outside the timing

    def time_fit(self, implementation, solver, batch_size):
        _fit(self.cls, self.X, self.y, solver, batch_size)


class EstimatorSpeedup:
    """scikit-learn's fit time divided by fastbp's: medians of 5 fits each, in the same process."""

    params = [["adam", "sgd"], ["auto", 32]]
    param_names = ["solver", "batch_size"]
    timeout = 300
    repeat = 1
    number = 1

    def setup(self, solver, batch_size):
        self.classes = _estimators()
        self.X, self.y = _digits()
        _fit(self.classes["fastbp"], self.X, self.y, solver, batch_size)

    def track_speedup(self, solver, batch_size):
        medians = {}
        for name, cls in self.classes.items():
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                _fit(cls, self.X, self.y, solver, batch_size)
                times.append(time.perf_counter() - t0)
            medians[name] = sorted(times)[2]
        return medians["sklearn"] / medians["fastbp"]

    track_speedup.unit = "x"
