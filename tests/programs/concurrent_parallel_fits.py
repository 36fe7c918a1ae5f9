"""Fit one seeded model alone, then twice at once from two threads, on the parallel backend.

Run by tests/test_threads.py. Prints one line of JSON: for each repetition, whether each concurrent
fit's parameters equal the lone fit's bit for bit, and the largest difference; and the SciPy
OpenBLAS thread count before and after. Usage: ``concurrent_parallel_fits.py [repetitions]``.
"""

import json
import sys
import threading

import numpy as np


def main():
    repetitions = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    import fastbp
    from fastbp.kernels import threads

    functions = threads._find_blas_thread_functions()
    if functions is not None:
        functions[0](2)  # a count other than 1, so that a count left at 1 shows
    blas_before = functions[1]() if functions else None

    rng = np.random.default_rng(1)
    X = rng.standard_normal((4096, 48)).astype(np.float32)
    y = rng.integers(0, 5, size=4096)

    def fit():
        model = fastbp.MLP([48, 96, 96, 5], loss="softmax_cross_entropy", seed=7)
        model.fit(X, y, epochs=8, batch_size=128, backend="parallel")
        return model.theta.copy()

    def worker(i, results, errors):
        try:
            results[i] = fit()
        except BaseException as exc:  # reported, not swallowed
            errors.append(repr(exc))

    lone = fit()
    runs = []
    for _ in range(repetitions):
        results = [None, None]
        errors = []
        pair = [threading.Thread(target=worker, args=(i, results, errors)) for i in range(2)]
        for t in pair:
            t.start()
        for t in pair:
            t.join()
        if errors:
            runs.append({"errors": errors})
            continue
        runs.append({"equal": [bool(np.array_equal(r, lone)) for r in results],
                     "max_diff": max(float(np.max(np.abs(r - lone))) for r in results)})
    blas_after = functions[1]() if functions else None
    print(json.dumps({"runs": runs, "blas_before": blas_before, "blas_after": blas_after}))


if __name__ == "__main__":
    main()
