"""Verdicts: what reviewers concluded about findings, by fingerprint, history kept.

Every verdict is a new row with the next ``verdict_id``; the current verdict of a fingerprint
is its latest row (view ``current_verdicts``). Nothing is ever updated or deleted, so the
history of a finding's reviews stays in the database.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from iccaudit.core import schema


class VerdictError(ValueError):
    """Verdicts that cannot be recorded; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s); nothing recorded:\n" + "\n".join(problems))


def last_verdict_id(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT coalesce(max(verdict_id), 0) FROM verdicts").fetchall()[0][0])


def insert_verdicts(con: duckdb.DuckDBPyConnection, verdicts: pd.DataFrame, *,
                    reviewer: str, source: str, made_at: dt.datetime | None = None) -> int:
    """Append ``verdicts`` (columns fingerprint, status, reason, run_id) in the caller's
    transaction, numbered after the last verdict; returns how many."""
    if verdicts.empty:
        return 0
    bad = sorted(set(verdicts["status"]) - set(schema.VERDICT_STATUSES))
    if bad:
        raise VerdictError([f"unknown status {b!r}" for b in bad])
    if not reviewer.strip():
        raise VerdictError(["say who reviewed (--reviewer)"])
    first = last_verdict_id(con) + 1
    frame = pd.DataFrame({
        "run_id": verdicts["run_id"].astype(object).to_numpy(),
        "verdict_id": range(first, first + len(verdicts)),
        "fingerprint": verdicts["fingerprint"].astype(object).to_numpy(),
        "status": verdicts["status"].astype(object).to_numpy(),
        "reason": verdicts["reason"].astype(object).where(verdicts["reason"].notna(), None)
        .to_numpy(),
        "reviewer": reviewer.strip(),
        "made_at": made_at or dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "source": source,
    })
    cols = schema.columns("verdicts")
    con.register("_incoming_verdicts", frame[cols])
    try:
        con.execute(f"INSERT INTO verdicts ({', '.join(cols)}) "
                    f"SELECT {', '.join(cols)} FROM _incoming_verdicts")
    finally:
        con.unregister("_incoming_verdicts")
    return len(frame)


def record_one(con: duckdb.DuckDBPyConnection, fingerprint: str, status: str,
               reason: str | None, *, reviewer: str, source: str) -> int:
    """Record one verdict on a finding of the latest run, in its own transaction; returns
    its id. Raises :class:`VerdictError` for an unknown fingerprint or status."""
    if status not in schema.VERDICT_STATUSES:
        raise VerdictError([(f"unknown status {status!r} (one of "
                            f"{', '.join(schema.VERDICT_STATUSES)})")])
    row = con.execute("SELECT run_id FROM latest_findings WHERE fingerprint = ? LIMIT 1",
                      [fingerprint]).fetchall()
    if not row:
        raise VerdictError([f"no finding {fingerprint!r} in the latest run"])
    con.execute("BEGIN TRANSACTION")
    try:
        insert_verdicts(con, pd.DataFrame({"fingerprint": [fingerprint], "status": [status],
                                           "reason": [reason or None], "run_id": [row[0][0]]}),
                        reviewer=reviewer, source=source)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return last_verdict_id(con)
