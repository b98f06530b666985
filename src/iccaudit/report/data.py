"""Read one run out of the findings database, as the frames the report and the export need.

Everything here is set-at-a-time DuckDB SQL on the stored tables; the report and the export
only format what this module returns. Figures the enrich views derived (category, price per
kW, peer medians, reference bands) come from what the run stored (``line_facts``,
``run_config``), never from enriching the lines again: a report shows its run as it was
scored, whatever the reference book says today. The database is opened read-only, so a report can be
written while nobody else writes, and never changes the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from iccaudit import store


@dataclass
class RunData:
    """The rows of one run that the report and the export show.

    Attributes
    ----------
    run_id : str
        The run shown.
    run : dict
        The ``runs`` row.
    files : DataFrame
        ``files`` rows plus the counts actually stored per file (``stored_*``) and ``reconciles``.
    rejects : DataFrame
        ``rejects`` rows of the run.
    rule_runs : DataFrame
        ``rule_runs`` rows of the run.
    findings : DataFrame
        ``findings`` rows with the implicated line's supplier, item, unit price and the
        ``corroborates`` flag parsed from the evidence.
    facts_stored : bool
        The run stored its lines' enriched facts and its configuration (runs written before
        those tables existed did not; their plots of enriched figures are not drawn).
    config_sha256 : str or None
        The hash of the run's configuration (rule files, reference book, detector settings,
        mapping), None when not stored.
    """

    run_id: str
    run: dict[str, Any]
    files: pd.DataFrame
    rejects: pd.DataFrame
    rule_runs: pd.DataFrame
    findings: pd.DataFrame
    facts_stored: bool = False
    config_sha256: str | None = None
    database_id: str | None = None
    verdict_seq: int = 0
    suppressions: pd.DataFrame | None = None


def resolve_run(con: duckdb.DuckDBPyConnection, run_id: str | None) -> str:
    """The run to show: the one asked for, else the latest; a one-line error if there is none."""
    if run_id is None:
        latest = store.latest_run_id(con)
        if latest is None:
            raise store.StoreError("the database holds no complete run; run `iccaudit score` first")
        return latest
    row = con.execute("SELECT run_id FROM runs WHERE run_id = ?", [run_id]).fetchone()
    if row is None:
        raise store.StoreError(f"no run {run_id!r} in the database")
    return run_id


def open_db(db: str | Path) -> duckdb.DuckDBPyConnection:
    """Open the findings database read-only and check it is an iccaudit database."""
    con = store.connect(db, read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables")
              .fetchall()}
    if not {"runs", "findings"} <= tables:
        con.close()
        raise store.StoreError(f"{db}: not an iccaudit findings database (no runs/findings)")
    return con


FINDINGS_SQL = """
SELECT f.*,
       r.verdict, r.verdict_reason, r.verdict_by, r.verdict_at, r.suppressed_by,
       coalesce(r.dismissed, false) AS dismissed,
       li.supplier, li.item_name, li.model AS item_model, li.unit, li.quantity,
       li.unit_price_cny, li.capacity_kw,
       -- evidence is JSON written by our detectors, but guard against a malformed value
       -- a model finding corroborates when its evidence lists rule findings ([] = alone)
       CASE WHEN json_valid(f.evidence)
            THEN coalesce(json_array_length(json_extract(f.evidence, '$.corroborates')), 0) > 0
       END AS corroborating
FROM findings f
LEFT JOIN line_items li ON li.run_id = f.run_id AND li.item_id = f.item_id
LEFT JOIN {reviewed} r ON r.run_id = f.run_id AND r.finding_id = f.finding_id
WHERE f.run_id = $run
ORDER BY f.est_excess_cny DESC NULLS LAST, f.source_file, f.source_sheet NULLS FIRST,
         f.source_row NULLS FIRST, f.detector, f.finding_id
"""

FILES_SQL = """
WITH li AS (SELECT source_file, count(*) AS n FROM line_items WHERE run_id = $run GROUP BY 1),
     rj AS (SELECT source_file, count(*) AS n FROM rejects WHERE run_id = $run GROUP BY 1),
     ni AS (SELECT source_file, count(*) AS n FROM non_items WHERE run_id = $run GROUP BY 1)
SELECT f.source_file, f.format, f.encoding, f.sheets, f.rows_read, f.line_items, f.rejects,
       f.non_items, f.status, f.error,
       coalesce(li.n, 0) AS stored_line_items, coalesce(rj.n, 0) AS stored_rejects,
       coalesce(ni.n, 0) AS stored_non_items,
       -- a file reconciles when its own accounting adds up AND the rows are really stored
       (f.rows_read = f.line_items + f.rejects + f.non_items
        AND f.line_items = coalesce(li.n, 0) AND f.rejects = coalesce(rj.n, 0)
        AND f.non_items = coalesce(ni.n, 0)) AS reconciles
FROM files f
LEFT JOIN li USING (source_file) LEFT JOIN rj USING (source_file) LEFT JOIN ni USING (source_file)
WHERE f.run_id = $run
ORDER BY f.source_file
"""


def load_run(db: str | Path, run_id: str | None = None) -> RunData:
    """Read the run (default: the latest complete one) from the database file."""
    con = open_db(db)
    try:
        run_id = resolve_run(con, run_id)
        params = {"run": run_id}
        run = con.execute("SELECT * FROM runs WHERE run_id = $run", params).df()
        return RunData(
            run_id=run_id,
            run={str(k): v for k, v in run.iloc[0].to_dict().items()},
            files=con.execute(FILES_SQL, params).df(),
            rejects=con.execute(
                "SELECT * FROM rejects WHERE run_id = $run "
                "ORDER BY source_file, source_sheet NULLS FIRST, source_row", params).df(),
            rule_runs=con.execute(
                "SELECT * FROM rule_runs WHERE run_id = $run "
                "ORDER BY status = 'ok', kind, detector", params).df(),
            findings=con.execute(FINDINGS_SQL.format(reviewed=_reviewed(con)), params).df(),
            facts_stored=facts_stored(con, run_id),
            config_sha256=_config_sha256(con, run_id),
            **_review_state(con),
        )
    finally:
        con.close()


#: Stands in for ``findings_reviewed`` in a database from before verdicts (schema 1).
_NO_REVIEWS = """(SELECT NULL::VARCHAR AS run_id, NULL::VARCHAR AS finding_id,
  NULL::VARCHAR AS verdict, NULL::VARCHAR AS verdict_reason, NULL::VARCHAR AS verdict_by,
  NULL::TIMESTAMP AS verdict_at, NULL::BIGINT AS suppressed_by, NULL::BOOLEAN AS dismissed
  WHERE false)"""


def _names(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall()}


def _reviewed(con: duckdb.DuckDBPyConnection) -> str:
    return "findings_reviewed" if "findings_reviewed" in _names(con) else _NO_REVIEWS


def _review_state(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The database's identity, the last verdict id and the suppressions (none before
    schema 2)."""
    if not {"verdicts", "suppressions"} <= _names(con):
        return {}
    return {
        "database_id": store.database_id(con),
        "verdict_seq": int(con.execute(
            "SELECT coalesce(max(verdict_id), 0) FROM verdicts").fetchall()[0][0]),
        "suppressions": con.execute("SELECT * FROM suppressions ORDER BY suppression_id").df(),
    }


def review_marks(db: str | Path, run_id: str) -> pd.DataFrame:
    """Per finding row of the run: its current verdict (carried by the fingerprint from
    earlier runs) and whether it is dismissed or suppressed. Columns finding_id, verdict,
    dismissed; empty for a database from before verdicts."""
    con = open_db(db)
    try:
        return con.execute(f"""
            SELECT finding_id, verdict, coalesce(dismissed, false) AS dismissed
            FROM {_reviewed(con)} WHERE run_id = $run""", {"run": run_id}).df()
    finally:
        con.close()


def headline(findings: pd.DataFrame, include_dismissed: bool = False) -> pd.DataFrame:
    """The findings that count in headline totals: dismissed or suppressed ones are left out
    unless ``include_dismissed`` (they stay listed, marked)."""
    if include_dismissed or findings.empty or "dismissed" not in findings:
        return findings
    return findings[~findings["dismissed"].fillna(False).astype(bool)]


def money_by(findings: pd.DataFrame, key: str, unknown: str) -> pd.DataFrame:
    """Money at risk and finding lines per ``key``, largest first.

    ``est_excess_cny`` is summed as stored: detectors write the money once per finding (and
    corroborating model findings carry none), so a sum never counts a line twice.
    """
    if findings.empty:
        return pd.DataFrame(columns=[key, "money", "lines", "high"])
    frame = findings.assign(
        **{key: findings[key].fillna(unknown).astype(str)},
        high=findings["severity"].isin(["high", "critical"]),
    )
    out = frame.groupby(key, sort=False).agg(
        money=("est_excess_cny", "sum"), lines=("finding_id", "size"), high=("high", "sum")
    )
    return out.reset_index().sort_values(["money", "lines", key],
                                         ascending=[False, False, True], kind="stable")


def facts_stored(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """Whether the run stored what it derived for its lines (``line_facts``) and the files
    that produced it (``run_config``). A run written before those tables existed did not:
    its report says so rather than derive the figures again with today's reference book."""
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall()}
    if not {"line_facts", "run_config"} <= tables:
        return False
    return bool(con.execute("SELECT count(*) FROM run_config WHERE run_id = $run",
                            {"run": run_id}).fetchall()[0][0])


def _config_sha256(con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    if not facts_stored(con, run_id):
        return None
    rows = con.execute("SELECT sha256 FROM run_config WHERE run_id = $run AND kind = 'pack'",
                       {"run": run_id}).fetchall()
    return rows[0][0] if rows else None


#: Per implicated line: flagged by any finding, and the cooling rule's price per kW (what
#: the rule saw, from its evidence).
FLAGS_SQL = """
flags AS (
  SELECT item_id, true AS flagged,
         max(CASE WHEN mechanism = 'liquid_cooling_markup' AND json_valid(evidence)
                  THEN TRY_CAST(json_extract_string(evidence, '$.price_per_kw') AS DOUBLE)
             END) AS ev_per_kw,
         bool_or(mechanism = 'liquid_cooling_markup') AS cooling_flag
  FROM findings WHERE run_id = $run AND item_id IS NOT NULL GROUP BY item_id
)
"""

COOLING_SQL = f"""
WITH {FLAGS_SQL}
SELECT li.item_id, li.source_file, li.source_row, li.tender_id, li.item_name,
       li.unit_price_cny, li.capacity_kw, coalesce(lf.cooling_type, 'other') AS cooling,
       CASE WHEN fl.ev_per_kw > 0 THEN fl.ev_per_kw ELSE lf.price_per_kw END AS per_kw,
       coalesce(fl.cooling_flag, false) AS flagged
FROM line_facts lf
JOIN line_items li ON li.run_id = lf.run_id AND li.item_id = lf.item_id
LEFT JOIN flags fl ON fl.item_id = lf.item_id
WHERE lf.run_id = $run AND lf.category = 'liquid_cooling' AND lf.price_per_kw > 0
ORDER BY cooling, per_kw, li.item_id
"""

PEERS_SQL = f"""
WITH {FLAGS_SQL}
-- the views compare prices on the same basis (per server, card, ...), not the raw unit
SELECT li.item_id, li.source_file, li.source_row, li.tender_id, li.item_name,
       lf.peer_basis AS unit, lf.peer_price_cny AS unit_price_cny, lf.accel_model AS accel,
       lf.category AS form, lf.peer_median, lf.peer_count AS peers,
       lf.peer_price_cny / lf.peer_median AS ratio, coalesce(fl.flagged, false) AS flagged
FROM line_facts lf
JOIN line_items li ON li.run_id = lf.run_id AND li.item_id = lf.item_id
LEFT JOIN flags fl ON fl.item_id = lf.item_id
WHERE lf.run_id = $run AND lf.accel_model IS NOT NULL AND lf.peer_median > 0
  AND lf.peer_count >= $min_peers
ORDER BY accel, form, unit_price_cny, li.item_id
"""


def cooling_points(db: str | Path, run_id: str) -> pd.DataFrame:
    """Price per kW of every liquid-cooling line of the run, flagged or not, as stored.

    Lines are those the run's views called ``liquid_cooling``, with their ``price_per_kw``
    (which honours capacity stated per unit or per line); a line flagged by the cooling rule
    shows the price per kW of its evidence, what the rule saw. Columns: item_id,
    source_file, source_row, tender_id, item_name, unit_price_cny, capacity_kw, cooling,
    per_kw, flagged. Empty for a run that predates stored facts (:func:`facts_stored`).
    """
    return _stored_query(db, run_id, COOLING_SQL, {}, COOLING_COLUMNS)


def peer_points(db: str | Path, run_id: str, min_peers: int = 3) -> pd.DataFrame:
    """Every accelerator line with a peer median, as stored: the views' peers (same category,
    model and price basis), groups of at least ``min_peers`` lines. Columns: item_id,
    source_file, source_row, tender_id, item_name, unit, unit_price_cny, accel, form,
    peer_median, peers, ratio, flagged (by any finding). Empty for a run that predates
    stored facts.
    """
    return _stored_query(db, run_id, PEERS_SQL, {"min_peers": int(min_peers)}, PEER_COLUMNS)


COOLING_COLUMNS = ["item_id", "source_file", "source_row", "tender_id", "item_name",
                   "unit_price_cny", "capacity_kw", "cooling", "per_kw", "flagged"]
PEER_COLUMNS = ["item_id", "source_file", "source_row", "tender_id", "item_name", "unit",
                "unit_price_cny", "accel", "form", "peer_median", "peers", "ratio", "flagged"]


def _stored_query(db: str | Path, run_id: str, sql: str, params: dict[str, Any],
                  columns: list[str]) -> pd.DataFrame:
    con = open_db(db)
    try:
        if not facts_stored(con, run_id):
            return pd.DataFrame(columns=columns)
        return con.execute(sql, {"run": run_id, **params}).df()
    finally:
        con.close()


#: The reference band per cooling type that the run's rules compared its cooling lines with
#: (CNY per kW): the lines' own stored reference, so it is the band of the book the run used.
#: Should reference prices ever differ between lines of one type, the band spans them all.
BANDS_SQL = """
SELECT coalesce(cooling_type, 'other') AS cooling, min(ref_low_cny) AS low,
       max(ref_high_cny) AS high
FROM line_facts
WHERE run_id = $run AND category = 'liquid_cooling' AND ref_basis = 'kw'
  AND ref_low_cny > 0 AND ref_high_cny >= ref_low_cny
GROUP BY ALL
"""


def cooling_bands(db: str | Path, run_id: str) -> dict[str, tuple[float, float]]:
    """The cooling reference bands (CNY/kW per cooling type) the run's rules used, from the
    stored reference figures of its cooling lines. Empty for a run that predates stored
    facts; a type without a priced line has no band."""
    con = open_db(db)
    try:
        if not facts_stored(con, run_id):
            return {}
        rows = con.execute(BANDS_SQL, {"run": run_id}).fetchall()
    finally:
        con.close()
    return {kind: (float(low), float(high)) for kind, low, high in rows}
