# Each target sets itself up on a fresh machine: it creates .venv and installs fastbp into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fastbp-installed

.PHONY: demo test lint docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m fastbp demo

test: $(STAMP)
	$(PY) -m pytest

# ruff's checks (configured in pyproject.toml) on the package and the tests.
lint: $(STAMP)
	$(PY) -m ruff check fastbp tests

# The HTML site (warnings are errors; no page may load anything from the network), then every doctest in it.
DOCS_STAMP := $(VENV)/.fastbp-docs-installed

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	$(PY) docs/check_no_network.py docs/_build/html
	$(PY) -m sphinx -W --keep-going -q -b doctest docs docs/_build/doctest
	@echo "HTML pages: docs/_build/html/index.html"

clean:
	rm -rf $(VENV) build *.egg-info docs/_build docs/generated
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

.PHONY: bench bench-smoke
BENCH_STAMP := $(VENV)/.fastbp-bench-installed

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]"
	touch $(BENCH_STAMP)

# The side-by-side comparison with every peer installed.
bench: $(BENCH_STAMP)
	$(PY) -m fastbp bench

# What CI runs: asv's own checks and one quick pass over a slice of every benchmark file, nothing saved.
# It only needs asv, not the peers (their benchmarks skip themselves).
bench-smoke: $(STAMP)
	$(PY) -m pip install --quiet "asv>=0.6"
	cd asv_bench && ../$(PY) -m asv machine --yes > /dev/null
	cd asv_bench && ../$(PY) -m asv check --python=same
	cd asv_bench && ../$(PY) -m asv run --python=same --quick --dry-run --show-stderr \
		--bench 'kernels\..*\(32, 32, .float32.|training\.TrainEpoch\..*\(.digits.|peers\.PeerEpoch\.time_epoch\(.digits., .numpy.|compile'

# On a machine with an NVIDIA GPU: the CUDA checks on the GPU (with small blocks, so that their shapes span
# several, then with the default ones and larger shapes), then fastbp-cuda against PyTorch and JAX on it.
# It installs nothing and runs from this tree, so it works where there is no network: GPU_PYTHON needs
# numba, numba-cuda, numpy, scipy and pytest (torch and JAX with CUDA for the peers; a missing peer is
# skipped). It stops at once, with the reason, when no GPU is usable. The bench figures go to GPU_OUT.
.PHONY: gpu-check
GPU_PYTHON ?= python3
GPU_OUT ?= gpu-check-results
GPU_ENV := PYTHONPATH="$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH}"
GPU_PYTEST := $(GPU_ENV) $(GPU_PYTHON) -m pytest tests/cuda_checks.py -q -rs -p no:cacheprovider -o addopts=

gpu-check:
	$(GPU_ENV) $(GPU_PYTHON) -c "import sys; from fastbp.kernels import cuda; \
		sys.exit(None if cuda.real_device_available() else 'gpu-check: ' + (cuda.device_problem() or \
		'NUMBA_ENABLE_CUDASIM is set; this check needs a real GPU'))"
	FASTBP_CUDA_TILE=4 FASTBP_CUDA_THREADS=8 $(GPU_PYTEST) -k "not gpu_"
	$(GPU_PYTEST)
	mkdir -p "$(GPU_OUT)"
	@# JAX takes most of the GPU's memory when it starts, unless told not to; the table is printed either way.
	$(GPU_ENV) XLA_PYTHON_CLIENT_PREALLOCATE=false $(GPU_PYTHON) -m fastbp bench --workloads medium,large \
		--backends parallel,cuda --peers torch,torch-cuda,jax --epochs 5 --rounds 2 \
		--save "$(GPU_OUT)/bench.json" > "$(GPU_OUT)/bench.txt"; status=$$?; cat "$(GPU_OUT)/bench.txt"; \
		exit $$status
