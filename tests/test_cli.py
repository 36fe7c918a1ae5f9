"""The command line (fastbp/__main__.py): its name, its version, its help and its errors."""

import subprocess
import sys

import pytest

import fastbp
from fastbp import __main__ as cli


def test_version():
    out = subprocess.run([sys.executable, "-m", "fastbp", "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == f"python -m fastbp {fastbp.__version__}"


def test_the_installed_script_calls_itself_fastbp(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/fastbp", "--help"])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("usage: fastbp ")


def test_every_option_has_help_text():
    parser = cli.make_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help text"


@pytest.mark.parametrize("argv, message", [
    (["demo", "--epochs", "0"], "argument --epochs: expected a positive integer, got 0"),
    (["demo", "--epochs", "many"], "argument --epochs: expected a positive integer, got 'many'"),
    (["demo", "--backend", "gpu"], "argument --backend: invalid choice: 'gpu'"),
    (["bench", "--epochs", "-1"], "argument --epochs: expected a positive integer, got -1"),
    (["warmup", "--dtypes", "float16"], "python -m fastbp warmup: unknown dtype or backend 'float16'"),
    (["train"], "argument COMMAND: invalid choice: 'train'"),
])
def test_bad_arguments_end_in_one_clean_line(argv, message):
    out = subprocess.run([sys.executable, "-m", "fastbp", *argv], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert message in out.stderr.strip().splitlines()[-1]
