"""notebooks/explore.ipynb is committed executed, with its outputs, and the tests execute it
again in a real kernel: it must run end to end and give the same tables as the committed copy.

    python tests/report/test_report_notebook.py --write   # re-execute and commit the outputs
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explore.ipynb"


def execute(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    """Run every cell in a kernel of this interpreter; raises on a failing cell."""
    from nbclient import NotebookClient

    # the kernel must be this interpreter (jupyter_client maps a "python" argv to
    # sys.executable); PATH first holds this venv for any subprocess the notebook starts
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    NotebookClient(nb, kernel_name="python3", timeout=600,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def tables(nb: nbformat.NotebookNode) -> list[str]:
    """The HTML tables the notebook shows (SQL results: deterministic for the samples)."""
    return [o["data"]["text/html"] for c in nb.cells if c.cell_type == "code"
            for o in c.outputs if "text/html" in o.get("data", {})]


def test_notebook_is_committed_executed_with_its_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code), "not executed"
    counts = [c.execution_count for c in code]
    assert counts == sorted(counts), "cells were executed out of order"
    assert tables(nb) and any("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]


@pytest.mark.slow
def test_notebook_runs_end_to_end_and_gives_the_committed_tables(tmp_path: Path) -> None:
    committed = nbformat.read(NOTEBOOK, as_version=4)
    nb = execute(nbformat.read(NOTEBOOK, as_version=4), tmp_path)

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the plot was not shown"
    assert any("money_at_risk_cny" in t for t in tables(nb))
    assert tables(nb) == tables(committed), (
        "the notebook's tables differ from the committed outputs: if the change is meant, "
        "run `python tests/report/test_report_notebook.py --write`")
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    report = next(line for line in printed.splitlines() if line.endswith("report.html"))
    assert Path(report).exists() and "Findings" in Path(report).read_text(encoding="utf-8")


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        done = execute(nbformat.read(NOTEBOOK, as_version=4), Path(tmp))
    nbformat.write(done, NOTEBOOK)
    print(f"{NOTEBOOK}: executed, {len(tables(done))} tables")
