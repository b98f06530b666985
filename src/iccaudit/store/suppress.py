"""Suppressions: a dismissal made a standing decision, stored as data (who, why, scope).

A suppression covers the findings of one detector: ``line`` the one finding line (its
fingerprint), ``supplier`` the detector's findings on one supplier's lines, ``rule`` the
detector's findings where a condition holds (checked by :mod:`.conditions`); the view
``finding_suppressions`` is rebuilt from the stored rows each time one is added.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from iccaudit.core import schema
from iccaudit.store.conditions import SuppressionError, parse_condition
from iccaudit.store.views import create_views

__all__ = ["SuppressionError", "add_suppression"]

def add_suppression(con: duckdb.DuckDBPyConnection, fingerprint: str, scope: str, *,
                    reason: str, created_by: str, condition: str | None = None) -> int:
    """Turn the dismissal of ``fingerprint`` into a suppression; returns its id.

    The finding's current verdict must be ``dismissed``; the detector (and the supplier,
    for scope ``supplier``) are taken from its latest finding line. Runs in one transaction.
    """
    if scope not in ("line", "supplier", "rule"):
        raise SuppressionError(f"scope must be line, supplier or rule, not {scope!r}")
    if not reason.strip() or not created_by.strip():
        raise SuppressionError("say who suppresses and why (--by, --reason)")
    if scope == "rule":
        if not condition:
            raise SuppressionError("scope rule needs --condition (e.g. \"unit = '项'\")")
        parse_condition(condition)
    elif condition:
        raise SuppressionError("--condition only goes with --scope rule")
    found = con.execute("""
        SELECT fl.detector, fl.supplier, fl.verdict, r.run_id
        FROM finding_lines fl JOIN runs r USING (run_id)
        WHERE fl.fingerprint = ? ORDER BY r.started_at DESC LIMIT 1""", [fingerprint]).fetchall()
    if not found:
        raise SuppressionError(f"no finding with fingerprint {fingerprint}")
    detector, supplier, verdict, run_id = found[0]
    if verdict != "dismissed":
        raise SuppressionError(f"finding {fingerprint} is not dismissed (its verdict: "
                               f"{verdict or 'none'}); dismiss it first")
    if scope == "supplier" and not supplier:
        raise SuppressionError(f"finding {fingerprint} names no supplier")
    con.execute("BEGIN TRANSACTION")
    try:
        (next_id,) = con.execute(
            "SELECT coalesce(max(suppression_id), 0) + 1 FROM suppressions").fetchall()[0]
        row = {"run_id": run_id, "suppression_id": int(next_id), "scope": scope,
               "detector": detector, "fingerprint": fingerprint if scope == "line" else None,
               "supplier": supplier if scope == "supplier" else None,
               "condition": condition if scope == "rule" else None, "reason": reason.strip(),
               "created_by": created_by.strip(),
               "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
               "from_fingerprint": fingerprint}
        schema.Suppression.model_validate(row)
        cols = schema.columns("suppressions")
        con.execute(f"INSERT INTO suppressions ({', '.join(cols)}) VALUES "
                    f"({', '.join('?' for _ in cols)})", [row[c] for c in cols])
        create_views(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return int(next_id)
