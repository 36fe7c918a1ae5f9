"""The documentation's runnable example: a user's own @njit loop built from the kernels."""

import runpy

from conftest import ROOT

EXAMPLE = ROOT / "docs" / "examples" / "embed_njit.py"


def test_embedding_example_runs_and_learns(capsys):
    runpy.run_path(str(EXAMPLE), run_name="__main__")  # asserts inside: gradients match, loss halves
    out = capsys.readouterr().out
    assert "largest gradient difference" in out
    assert "accuracy" in out
