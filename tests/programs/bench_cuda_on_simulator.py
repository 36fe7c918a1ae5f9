"""Run the bench's fastbp-cuda and fastbp-cpu rows on a tiny workload under Numba's CUDA simulator.

Prints the bench result as JSON. The simulator must be on before numba is
imported, which is why this runs in a child process (tests/test_bench.py).
"""
import os

os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

from fastbp import bench  # noqa: E402

workload = bench.make_workload("custom", layers=[3, 5, 3], samples=40, batch=16)
result = bench.run(workloads=(), backends=("cpu", "cuda"), peers=(), epochs=2, rounds=2, custom=[workload],
                   log=lambda *a: None)
print(bench.to_json(result))
