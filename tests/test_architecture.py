"""The package's import direction: compiled code below, the model layer above, never the other way.

Read from the source with ``ast`` (imports inside functions count too), so a
lazy import cannot hide an arrow that points up.
"""

import ast

import pytest
from conftest import PACKAGE

# Each module's layer, lowest first. A module may import from its own layer or below.
LAYERS = [
    ("fastbp._settings",),
    ("fastbp.kernels",),
    ("fastbp._validation", "fastbp.sparse_input", "fastbp.network", "fastbp.reference", "fastbp.datasets",
     "fastbp.variant_choice"),
    ("fastbp.optim", "fastbp.schedules", "fastbp.lbfgs"),
    ("fastbp.training",),
    ("fastbp.fitting", "fastbp.persistence", "fastbp.progress"),
    ("fastbp.model",),
    ("fastbp.gradcheck",),
    ("fastbp.sklearn", "fastbp.bench", "fastbp.warmup", "fastbp.plotting", "fastbp.__main__", "fastbp"),
]
# What "the model layer" is, for the kernels' rule: everything above the kernels but the settings.
MODEL_LAYER = [name for layer in LAYERS[2:] for name in layer if name != "fastbp"]


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path):
    """Every fastbp module that ``path`` imports, relative imports resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            if node.module:
                found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # "from . import training"
    return {m for m in found if m == "fastbp" or m.startswith("fastbp.")}


def layer_of(name):
    best = None
    for rank, layer in enumerate(LAYERS):
        for prefix in layer:
            if name == prefix or name.startswith(prefix + "."):
                if best is None or len(prefix) > len(best[1]):
                    best = (rank, prefix)
    return None if best is None else best[0]


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    assert [module_name(p) for p in SOURCES if layer_of(module_name(p)) is None] == []


def test_the_resolver_sees_relative_imports():
    """A guard on the test itself: it must find the arrows that are known to exist."""
    assert "fastbp.kernels.layout" in imported_modules(PACKAGE / "network.py")
    assert "fastbp._settings" in imported_modules(PACKAGE / "kernels" / "compile.py")
    assert "fastbp.training" in imported_modules(PACKAGE / "model.py")
    assert "fastbp.kernels.activations" in imported_modules(PACKAGE / "kernels" / "cuda" / "shared_math.py")


@pytest.mark.parametrize("path", [p for p in SOURCES if module_name(p).startswith("fastbp.kernels")],
                         ids=lambda p: module_name(p))
def test_kernels_never_import_the_model_layer(path):
    upward = sorted(m for m in imported_modules(path) if any(m == x or m.startswith(x + ".") for x in MODEL_LAYER)
                    or m == "fastbp")
    assert upward == [], f"{module_name(path)} imports {upward}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_imports_point_down(path):
    own = layer_of(module_name(path))
    upward = sorted(m for m in imported_modules(path) if (layer_of(m) or 0) > own)
    assert upward == [], f"{module_name(path)} (layer {own}) imports {upward} from a higher layer"
