"""Helpers of the hardening tests: the real CLI in a child process (timeout, peak memory) or
in-process through click's CliRunner, and the checks every written database must pass."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from iccaudit.cli import cli

#: A hang guard, not a timing assertion: far above what any case here needs.
HANG_SECONDS = 120


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    maxrss_mb: float = 0.0

    @property
    def text(self) -> str:
        return self.out + self.err


#: A small launcher between the test process and the CLI. Linux charges a child's peak RSS
#: with the memory of the process it was spawned from (the vfork'ed address space is counted
#: before exec), so the CLI spawned straight from a pytest process of several hundred MB would
#: report that as its own peak; spawned from this launcher of ~10 MB it reports its own.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_cli(args: list[str], *, timeout: float = HANG_SECONDS, cwd: Path | None = None,
            env: dict | None = None) -> Outcome:
    """``iccaudit ARGS`` in a child process (the console entry point, ``main``); returns its
    exit code, output and peak resident memory (ru_maxrss of the CLI process alone)."""
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"icc-{os.getpid()}-{time.time_ns()}"
    with open(f"{out_path}.out", "wb") as out, open(f"{out_path}.err", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, f"{out_path}.rss",
             sys.executable, "-c", "from iccaudit.cli import main; main()", *args],
            stdout=out, stderr=err, cwd=cwd, env={**os.environ, **(env or {})},
            start_new_session=True,  # the hang guard stops the launcher and the CLI together
        )
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                os.wait4(proc.pid, 0)
                pytest.fail(f"iccaudit {' '.join(args)} hung for more than {timeout} s")
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    texts = [Path(f"{out_path}.{k}").read_text(errors="replace") for k in ("out", "err")]
    rss = Path(f"{out_path}.rss")
    maxrss_kb = float(rss.read_text()) if rss.exists() else usage.ru_maxrss
    for k in ("out", "err", "rss"):
        Path(f"{out_path}.{k}").unlink(missing_ok=True)
    return Outcome(proc.returncode, texts[0], texts[1], maxrss_kb / 1024)


def _alarm(signum, frame):  # pragma: no cover - only when something hangs
    raise TimeoutError(f"hung for more than {HANG_SECONDS} s")


def invoke(args: list[str]) -> Outcome:
    """``iccaudit ARGS`` in this process (fast), with a hang guard; a Python exception that
    escapes the command is a failure, as it would print a traceback or 'internal error'."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_SECONDS)
    try:
        result = CliRunner().invoke(cli, args)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"iccaudit {args[:2]} raised {result.exception!r}") \
            from result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


def assert_one_line_error(outcome: Outcome, *needles: str) -> str:
    """Exit 1 and exactly one stderr line 'iccaudit: error: ...' holding every needle."""
    assert "Traceback" not in outcome.text, outcome.text
    assert "internal error" not in outcome.text, outcome.text
    assert outcome.code == 1, outcome.text
    lines = [ln for ln in outcome.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("iccaudit: error: "), outcome.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def check_database(db: Path) -> dict:
    """Only complete runs, every file reconciles, `iccaudit doctor` passes. Returns counts."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs WHERE status <> 'complete'"
                           ).fetchone()[0] == 0
        bad = con.execute("""SELECT * FROM files
                             WHERE rows_read <> line_items + rejects + non_items""").fetchall()
        assert bad == [], bad
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("runs", "files", "line_items", "rejects", "non_items", "findings")}
        counts["run_ids"] = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY ALL"
                                                       ).fetchall()]
    finally:
        con.close()
    doctor = invoke(["doctor", "--db", str(db)])
    assert doctor.code == 0, doctor.text
    return counts
