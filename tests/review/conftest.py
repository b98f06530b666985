"""Fixtures of the review-loop tests: the samples scored once, a fresh copy per test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples" / "tenders"


def iccaudit(*args: str, check: bool = True, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    """Run the installed command line; with ``check``, a non-zero exit fails the test."""
    exe = Path(sys.executable).with_name("iccaudit")
    proc = subprocess.run([str(exe) if exe.exists() else "iccaudit", *args],
                          capture_output=True, text=True, cwd=REPO, check=False,
                          env={**os.environ, **(env or {})})
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def summary(proc: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def scored(tmp_path_factory) -> Path:
    """The bundled samples scored by the real pipeline (rules and models)."""
    db = tmp_path_factory.mktemp("scored") / "samples.duckdb"
    iccaudit("score", str(SAMPLES), "--db", str(db), "--quiet", "--format", "json")
    return db


@pytest.fixture
def db(scored, tmp_path) -> Path:
    """A private copy of the scored database, for a test that records verdicts."""
    copy = tmp_path / "review.duckdb"
    shutil.copy(scored, copy)
    return copy
