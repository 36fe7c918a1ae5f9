"""Compiled variants (fastbp/kernels/variants.py): a driver compiled for a network's own activations, loss and
optimizer computes what the general driver computes, compiles only that code, and gives way to the general
driver once that one is compiled."""

import json
import os
import re
import subprocess
import sys

import numba
import numpy as np
import pytest
from conftest import make_data

import fastbp
from fastbp import variant_choice
from fastbp.kernels import driver
from fastbp.kernels.layout import ACTIVATIONS, ADAM, ADAMW, IDENTITY, LOSSES, RELU, SGD, TANH
from fastbp.kernels.variants import GENERAL, Variant


def test_a_variant_holds_sorted_distinct_known_codes():
    v = Variant(activations=[RELU, IDENTITY, RELU], losses=[LOSSES["mse"]], optimizers=[SGD])
    assert (v.activations, v.losses, v.optimizers) == ((IDENTITY, RELU), (LOSSES["mse"],), (SGD,))
    assert v == Variant([IDENTITY, RELU], [LOSSES["mse"]], [SGD]) and hash(v) == hash(Variant([RELU, IDENTITY],
                                                                                             [LOSSES["mse"]], [SGD]))
    assert v != GENERAL and GENERAL.activations == tuple(sorted(ACTIVATIONS.values()))
    assert numba.typeof(v) != numba.typeof(GENERAL)
    assert numba.typeof(v) == numba.typeof(Variant([IDENTITY, RELU], [LOSSES["mse"]], [SGD]))


@pytest.mark.parametrize("kwargs, message", [
    (dict(activations=[]), "activation codes must be a non-empty subset"),
    (dict(activations=[99]), re.escape(f"activation codes must be a non-empty subset of "
                                       f"{tuple(sorted(ACTIVATIONS.values()))}, got (99,)")),
    (dict(activations=iter([1.5])), r"activation codes must be .*, got \(1.5,\)"),
    (dict(losses=[7]), "loss codes"),
    (dict(optimizers=[3]), "optimizer codes"),
])
def test_a_variant_refuses_unknown_codes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Variant(**kwargs)


def test_an_unknown_variant_choice_is_refused():
    with pytest.raises(ValueError, match="unknown variant choice 'some'; expected one of"):
        with variant_choice.variants("some"):
            pass


def test_the_network_variant_serves_its_codes_only():
    net = fastbp.MLP([3, 4, 5, 2], activation=["tanh", "relu"], loss="mse").network
    assert variant_choice.network_variant(net) == Variant([IDENTITY, RELU, TANH])  # every loss and optimizer
    assert variant_choice.network_variant(net, loss=True) == Variant([IDENTITY, RELU, TANH], [LOSSES["mse"]])
    assert variant_choice.network_variant(net, optimizer=ADAM) == Variant([IDENTITY, RELU, TANH], [LOSSES["mse"]],
                                                                    [ADAM])


CASES = [
    # (activations, loss, optimizer, backend, sparse)
    (["relu", "tanh"], "softmax_cross_entropy", "sgd", "cpu", False),
    (["gelu", "sigmoid"], "binary_cross_entropy", "adam", "cpu", False),
    (["elu", "softplus"], "mse", "adamw", "parallel", False),
    (["leaky_relu", "relu"], "poisson", "sgd", "cpu", True),
    (["identity", "tanh"], "softmax_cross_entropy", "adam", "parallel", False),
]
OPTIMIZERS = {"sgd": lambda: fastbp.SGD(lr=0.05, momentum=0.9), "adam": lambda: fastbp.Adam(lr=1e-2),
              "adamw": lambda: fastbp.AdamW(lr=1e-2, weight_decay=0.1)}


def _run(choice, activations, loss, opt_name, backend, sparse, dtype):
    X, y = make_data("mse" if loss == "poisson" else loss, n=60, k=3, d=5)
    if loss == "poisson":  # counts
        y = np.random.default_rng(1).poisson(1.0, (60, 3)).astype(np.float64)
    if sparse:
        import scipy.sparse
        X = scipy.sparse.csr_matrix(np.where(np.abs(X) > 0.7, X, 0.0))
    model = fastbp.MLP([5, 7, 6, 3], activation=activations, loss=loss, dtype=dtype, seed=3)
    with variant_choice.variants(choice):
        model.fit(X, y, epochs=2, batch_size=8, optimizer=OPTIMIZERS[opt_name](), backend=backend, l2=1e-3,
                  sample_weight=np.linspace(0.5, 1.5, 60))
        loss_value, gWs, gbs = model.loss_and_grad(X, y, l2=1e-3)
        out = model.predict(X)
    return model.theta.copy(), loss_value, np.concatenate([g.ravel() for g in gWs + gbs]), out


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join([*c[0], c[1], c[2], c[3]] + ["sparse"] * c[4]))
def test_the_network_variant_computes_what_the_general_one_does(case, dtype):
    """The same arithmetic, to rounding: fast math lets LLVM fuse multiply-adds differently in differently shaped
    code (and cached code can differ from fresh by an ulp), so the two agree to a few ulps, often bit for bit."""
    general = _run("general", *case, dtype)
    own = _run("network", *case, dtype)
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-5, atol=1e-6)
    for a, b, what in zip(own, general, ("weights after fit", "loss_and_grad loss", "gradient", "predict")):
        np.testing.assert_allclose(a, b, **tol, err_msg=what)


def _signatures_for(dispatcher, variant):
    return [sig for sig in dispatcher.signatures if sig[-1] == numba.typeof(variant)]


SYMBOLS_COMPILED = """
import json, numba, numpy as np, fastbp
from fastbp import variant_choice
from fastbp.kernels import driver
from fastbp.kernels.layout import IDENTITY, LOSSES, RELU, SGD
from fastbp.kernels.variants import GENERAL, Variant
rng = np.random.default_rng(0)
X, y = rng.standard_normal((16, 3)), rng.integers(0, 2, 16)
model = fastbp.MLP([3, 4, 2], activation="relu", loss="softmax_cross_entropy", dtype=np.float64, seed=0)
found = {}
for choice, variant in (("network", Variant([IDENTITY, RELU], [LOSSES["softmax_cross_entropy"]], [SGD])),
                        ("general", GENERAL)):
    with variant_choice.variants(choice):
        model.fit(X, y, epochs=1, batch_size=8, optimizer=fastbp.SGD(lr=0.01), backend="cpu")
    (sig,) = [s for s in driver.train_epoch.signatures if s[-1] == numba.typeof(variant)]
    code = driver.train_epoch.inspect_llvm(sig)
    found[choice] = [symbol for symbol in ("expm1", "log1p", "llvm.sqrt") if symbol in code]
print(json.dumps(found))
"""


def test_the_network_variant_compiles_none_of_the_other_activations_losses_or_optimizers(tmp_path):
    """ELU's expm1, softplus's and binary cross-entropy's log1p, Adam's square root: the general driver has them,
    the relu, softmax cross-entropy and SGD driver none (compiled afresh: cached code keeps no LLVM IR)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", SYMBOLS_COMPILED], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"network": [], "general": ["expm1", "log1p", "llvm.sqrt"]}


def test_once_the_general_variant_is_compiled_every_network_uses_it():
    X, y = make_data("softmax_cross_entropy", n=16, k=3, d=3)
    first = fastbp.MLP([3, 4, 3], activation="relu", loss="softmax_cross_entropy", dtype=np.float64, seed=0)
    with variant_choice.variants("general"):
        first.fit(X, y, epochs=1, batch_size=8, backend="cpu")
    compiled = list(driver.train_epoch.signatures)
    other_variant = Variant([IDENTITY, ACTIVATIONS["softplus"]], [LOSSES["mse"]], [ADAMW])
    assert not _signatures_for(driver.train_epoch, other_variant)
    other = fastbp.MLP([3, 5, 3], activation="softplus", loss="mse", dtype=np.float64, seed=1)
    other.fit(X, np.eye(3)[y], epochs=1, batch_size=8, optimizer=fastbp.AdamW(), backend="cpu")
    assert driver.train_epoch.signatures == compiled  # nothing new was compiled: the general variant served it


SECOND_KIND = """
import json, numba, numpy as np, fastbp
from fastbp import variant_choice
from fastbp.kernels import driver
from fastbp.kernels.layout import ACTIVATIONS, ADAM, IDENTITY, LOSSES
from fastbp.kernels.variants import GENERAL, Variant
rng = np.random.default_rng(0)
X, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 2))
run = driver.train_epoch
own = {name: Variant([IDENTITY, ACTIVATIONS[name]], [LOSSES["mse"]], [ADAM]) for name in ("gelu", "sigmoid")}
def compiled(variant):
    return [s for s in run.signatures if s[-1] == numba.typeof(variant)]
first = fastbp.MLP([3, 4, 2], activation="gelu", loss="mse", dtype=np.float64, seed=0)
first.fit(X, y, epochs=1, batch_size=8, backend="cpu")
report = {"first": [len(compiled(own["gelu"])), len(compiled(GENERAL))]}
second = fastbp.MLP([3, 4, 2], activation="sigmoid", loss="mse", dtype=np.float64, seed=0)
second.fit(X, y, epochs=1, batch_size=8, backend="cpu")
report["second"] = [len(compiled(own["sigmoid"])), len(compiled(GENERAL))]
count = len(run.signatures)
first.fit(X, y, epochs=1, batch_size=8, backend="cpu")
report["first again compiles"] = len(run.signatures) - count
print(json.dumps(report))
"""


def test_a_second_kind_of_network_takes_the_general_variant(tmp_path):
    """In a fresh process with an empty cache: the first network compiles its own variant, a second kind the general
    one (not its own), and the first keeps its own."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    env.pop("FASTBP_VARIANTS", None)
    run = subprocess.run([sys.executable, "-c", SECOND_KIND], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"first": [1, 0], "second": [0, 1], "first again compiles": 0}


def test_a_variants_block_is_undone_on_leaving_it_even_by_an_error():
    before = variant_choice._variant_choice.get()
    with pytest.raises(RuntimeError):
        with variant_choice.variants("general"):
            with variant_choice.variants("network"):
                assert variant_choice._variant_choice.get() == "network"
            assert variant_choice._variant_choice.get() == "general"
            raise RuntimeError
    assert variant_choice._variant_choice.get() == before


SHARED_PASSES = """
import json, numpy as np, fastbp
from fastbp.kernels import driver
rng = np.random.default_rng(0)
X, y = rng.standard_normal((64, 5)), rng.integers(0, 3, 64)
model = fastbp.MLP([5, 8, 3], activation="relu", loss="softmax_cross_entropy", dtype=np.float64, seed=0)
model.fit(X, y, epochs=1, batch_size=16, backend="cpu")
model.predict(X)
model.loss_and_grad(X, y)
model.fit(X, y, epochs=1, batch_size=16, backend="parallel")
print(json.dumps({"forward_chunk": len(driver.forward_chunk.signatures),
                  "chunk_loss_and_grad": len(driver.chunk_loss_and_grad.signatures)}))
"""


def test_an_epoch_a_prediction_a_gradient_and_a_parallel_epoch_share_one_compiled_pass():
    """The per-chunk passes are compiled once per network and dtype, whatever the caller: the serial and parallel
    epoch, predict and loss_and_grad. (Inlined passes would have no signatures; a caller passing literals, or a
    variant that still names the optimizer, a second one.)"""
    env = dict(os.environ, FASTBP_VARIANTS="network")
    run = subprocess.run([sys.executable, "-c", SHARED_PASSES], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"forward_chunk": 1, "chunk_loss_and_grad": 1}
