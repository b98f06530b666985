"""Fixtures of the report tests: the hand-made database, and one scored from the samples."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.report.dbfactory import REPO, build_fixture_db

SAMPLES = REPO / "data" / "samples" / "tenders"


@pytest.fixture(scope="session")
def fixture_db(tmp_path_factory) -> Path:
    """The hand-made two-run database (read-only use)."""
    return build_fixture_db(tmp_path_factory.mktemp("fixture") / "fixture.duckdb")


def _iccaudit() -> str:
    exe = Path(sys.executable).with_name("iccaudit")
    return str(exe) if exe.exists() else "iccaudit"


def _score_samples(tmp: Path, db: Path) -> str | None:
    """Score the sample corpus into ``db``; None on success, else why it could not.

    The corpus is data/samples/tenders when it is there, else one written by
    ``iccaudit samples`` (deterministic) into ``tmp``.
    """
    source = SAMPLES
    if not SAMPLES.is_dir() or not any(SAMPLES.iterdir()):
        proc = subprocess.run([_iccaudit(), "samples", "--out", str(tmp / "corpus")],
                              capture_output=True, text=True, cwd=REPO, check=False)
        if proc.returncode != 0:
            return (proc.stderr.strip().splitlines() or ["iccaudit samples failed"])[-1]
        source = tmp / "corpus" / "tenders"
    cmd = [_iccaudit(), "score", str(source), "--db", str(db), "--quiet", "--format", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=os.environ.copy(),
                          check=False)
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or ["iccaudit score failed"])[-1]
    return None


@pytest.fixture(scope="session")
def samples_db(tmp_path_factory) -> Path:
    """A database scored from data/samples/tenders by the real pipeline (a failure fails)."""
    tmp = tmp_path_factory.mktemp("samples")
    db = tmp / "samples.duckdb"
    why = _score_samples(tmp, db)
    if why is not None:
        pytest.fail(f"scoring the samples failed: {why}")
    return db


@pytest.fixture(params=["fixture", "samples"])
def any_db(request) -> Path:
    """Each test that takes this runs on the hand-made database and on the scored samples."""
    return request.getfixturevalue(f"{request.param}_db")
