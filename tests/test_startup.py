"""Start-up stays light: the CLI and `rules validate` never import the heavy libraries.

A behaviour, not a timing (the times are printed by ``benchmarks/bench_startup.py``): Python's
``-X importtime`` lists every module a process imports, and none of the data and model
libraries may be among them for these commands.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = {"pandas", "sklearn", "pyod", "numba", "scipy", "matplotlib"}


def _imported(args: list[str]) -> set[str]:
    """Top-level names of every module the process imported (from ``-X importtime``)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True,
                          text=True, check=True)
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "iccaudit" in names  # the listing worked at all
    return names


def test_importing_the_cli_imports_no_heavy_library() -> None:
    assert not _imported(["-c", "import iccaudit.cli"]) & HEAVY


@pytest.mark.parametrize("command", [["--help"], ["rules", "validate"]])
def test_help_and_rules_validate_import_no_heavy_library(command: list[str]) -> None:
    assert not _imported(["-m", "iccaudit.cli", *command]) & HEAVY


def test_the_check_sees_a_heavy_import() -> None:
    # the same listing does show pandas where it is imported
    assert "pandas" in _imported(["-c", "import iccaudit.cli, pandas"])
