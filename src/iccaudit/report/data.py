"""Read one run out of the findings database, as the frames the report and the export need.

Everything here is set-at-a-time DuckDB SQL on the stored tables; the report and the export
only format what this module returns. The database is opened read-only, so a report can be
written while nobody else writes, and never changes the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from iccaudit import store

#: Accelerator recognition for the peer plot, first match wins. The enrich views are the
#: authority for rules; this list only groups stored lines for a picture, and falls back to
#: "same text, same unit" when nothing matches (those lines are left out of the plot).
ACCELERATOR_PATTERNS: list[tuple[str, str]] = [
    ("H100", r"H100"),
    ("H800", r"H800"),
    ("H200", r"H200"),
    ("H20", r"H20([^0-9]|$)"),
    ("A800", r"A800"),
    ("A100", r"A100"),
    ("L40S", r"L40S"),
    ("L20", r"(^|[^0-9A-Z])L20([^0-9]|$)"),
    ("RTX 4090", r"4090"),
    ("Ascend 910B", r"910B|昇腾|ASCEND"),
    ("MLU370", r"MLU370|寒武纪|CAMBRICON"),
    ("Hygon K100", r"K100|海光|HYGON|DCU"),
]

#: What a cooling line looks like, and what says it is a server or a service rather than
#: cooling plant. The enrich vocabulary is used when present, so the plot recognises cooling
#: lines with the words the views use; these are the fallbacks (matched on lower-cased text).
COOLING_PATTERN = r"冷板|浸没|液冷|\bcdu\b|冷却液|coolant|cold\s*plate|immersion|liquid"
IMMERSION_PATTERN = r"浸没|immersion|浸泡"
NOT_COOLING_PATTERN = r"server|整机|机头|模组|hgx|gpu|改造|retrofit|服务|安装|运维"


def _cooling_patterns() -> tuple[str, str, str]:
    try:
        from iccaudit.enrich import vocab
    except ImportError:
        return COOLING_PATTERN, IMMERSION_PATTERN, NOT_COOLING_PATTERN
    not_cooling = f"{vocab.RETROFIT}|{vocab.SERVICE}|{vocab.HEAD}|{vocab.MODULE}|{vocab.SERVER}|{vocab.GPU_HINT}"
    return vocab.LIQUID, vocab.IMMERSION, not_cooling


#: Reference bands in CNY per kW when the rule pack's reference book has none (domain.md,
#: Guosen Securities): cold plate 5-6 k/kW, immersion about 10 k/kW; type not stated: either.
DEFAULT_COOLING_BANDS: dict[str, tuple[float, float]] = {
    "cold_plate": (5000.0, 6000.0),
    "immersion": (9000.0, 11000.0),
    "other": (5000.0, 12000.0),
}


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
    """

    run_id: str
    run: dict[str, Any]
    files: pd.DataFrame
    rejects: pd.DataFrame
    rule_runs: pd.DataFrame
    findings: pd.DataFrame


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
       li.supplier, li.item_name, li.model AS item_model, li.unit, li.quantity,
       li.unit_price_cny, li.capacity_kw,
       -- evidence is JSON written by our detectors, but guard against a malformed value
       -- a model finding corroborates when its evidence lists rule findings ([] = alone)
       CASE WHEN json_valid(f.evidence)
            THEN coalesce(json_array_length(json_extract(f.evidence, '$.corroborates')), 0) > 0
       END AS corroborating
FROM findings f
LEFT JOIN line_items li ON li.run_id = f.run_id AND li.item_id = f.item_id
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
            run=run.iloc[0].to_dict(),
            files=con.execute(FILES_SQL, params).df(),
            rejects=con.execute(
                "SELECT * FROM rejects WHERE run_id = $run "
                "ORDER BY source_file, source_sheet NULLS FIRST, source_row", params).df(),
            rule_runs=con.execute(
                "SELECT * FROM rule_runs WHERE run_id = $run "
                "ORDER BY status = 'ok', kind, detector", params).df(),
            findings=con.execute(FINDINGS_SQL, params).df(),
        )
    finally:
        con.close()


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


ENRICHED_COLUMNS = ("item_id", "category", "cooling_type", "price_per_kw", "accel_model",
                    "peer_basis", "peer_price_cny", "peer_count", "peer_median",
                    "ratio_to_peer_median")


def enriched_items(db: str | Path, run_id: str) -> pd.DataFrame | None:
    """The run's stored lines passed through the enrich views again (category, cooling type,
    price per kW, accelerator model, peer median), so the plots recognise lines exactly as the
    rules did. The reference book is the bundled one, as in ``score``.

    None when the enrich package or its reference book is not available; the plots then fall
    back to recognising lines by wording.
    """
    try:
        from iccaudit.core.paths import reference_dir
        from iccaudit.enrich import ReferenceError as BookError
        from iccaudit.enrich import build_sandbox
    except ImportError:
        return None
    con = open_db(db)
    try:
        lines = con.execute("SELECT * FROM line_items WHERE run_id = $run ORDER BY item_id",
                            {"run": run_id}).df()
    finally:
        con.close()
    try:
        sandbox = build_sandbox(lines, reference_dir())
    except (BookError, OSError):
        return None
    try:
        cols = ", ".join(ENRICHED_COLUMNS)
        enriched = sandbox.execute(f"SELECT {cols} FROM items").df()
    finally:
        sandbox.close()
    keep = ["item_id", "source_file", "source_row", "tender_id", "item_name", "unit",
            "unit_price_cny", "capacity_kw"]
    return lines[keep].merge(enriched, on="item_id", how="left", validate="one_to_one")


def _flags(db: str | Path, run_id: str) -> pd.DataFrame:
    """Per implicated line: flagged by any finding, and the cooling rule's price per kW."""
    sql = """
    SELECT item_id, true AS flagged,
           max(CASE WHEN mechanism = 'liquid_cooling_markup' AND json_valid(evidence)
                    THEN TRY_CAST(json_extract_string(evidence, '$.price_per_kw') AS DOUBLE)
               END) AS ev_per_kw,
           bool_or(mechanism = 'liquid_cooling_markup') AS cooling_flag
    FROM findings WHERE run_id = $run AND item_id IS NOT NULL GROUP BY item_id
    """
    con = open_db(db)
    try:
        return con.execute(sql, {"run": run_id}).df()
    finally:
        con.close()


def cooling_points(db: str | Path, run_id: str,
                   enriched: pd.DataFrame | None = None) -> pd.DataFrame:
    """Price per kW of every liquid-cooling line of the run, flagged or not.

    Lines are those the views call ``liquid_cooling``, with their ``price_per_kw`` (which
    honours capacity stated per unit or per line); a line flagged by the cooling rule shows
    the price per kW of its evidence, what the rule saw. Columns: item_id, source_file,
    source_row, tender_id, item_name, unit_price_cny, capacity_kw, cooling, per_kw, flagged.
    """
    if enriched is None:
        return _cooling_points_fallback(db, run_id)
    lines = enriched[(enriched["category"] == "liquid_cooling")
                     & (enriched["price_per_kw"] > 0)]
    flags = _flags(db, run_id)
    out = lines.merge(flags, on="item_id", how="left")
    out["cooling"] = out["cooling_type"].fillna("other")
    out["per_kw"] = out["ev_per_kw"].where(out["ev_per_kw"] > 0, out["price_per_kw"])
    out["flagged"] = out["cooling_flag"].fillna(False).astype(bool)
    cols = ["item_id", "source_file", "source_row", "tender_id", "item_name", "unit_price_cny",
            "capacity_kw", "cooling", "per_kw", "flagged"]
    return out[cols].sort_values(["cooling", "per_kw"], kind="stable").reset_index(drop=True)


def peer_points(db: str | Path, run_id: str, enriched: pd.DataFrame | None = None,
                min_peers: int = 3) -> pd.DataFrame:
    """Every accelerator line with a peer median: the views' peers (same category, model and
    price basis), groups of at least ``min_peers`` lines. Columns: item_id, source_file,
    source_row, tender_id, item_name, unit, unit_price_cny, accel, form, peer_median, peers,
    ratio, flagged (by any finding).
    """
    if enriched is None:
        return _peer_points_fallback(db, run_id, min_peers)
    lines = enriched[enriched["accel_model"].notna() & (enriched["peer_median"] > 0)
                     & (enriched["peer_count"] >= min_peers)]
    out = lines.merge(_flags(db, run_id)[["item_id", "flagged"]], on="item_id", how="left")
    out = out.assign(
        accel=out["accel_model"], form=out["category"], peers=out["peer_count"],
        ratio=out["ratio_to_peer_median"], flagged=out["flagged"].fillna(False).astype(bool),
        # the views compare prices on the same basis (per server, card, ...) not the raw unit
        unit_price_cny=out["peer_price_cny"], unit=out["peer_basis"],
    )
    cols = ["item_id", "source_file", "source_row", "tender_id", "item_name", "unit",
            "unit_price_cny", "accel", "form", "peer_median", "peers", "ratio", "flagged"]
    return out[cols].sort_values(["accel", "form", "unit_price_cny"],
                                 kind="stable").reset_index(drop=True)


def _cooling_points_fallback(db: str | Path, run_id: str) -> pd.DataFrame:
    """Price per kW of every cooling line, recognised by wording (no enrich package).

    A flagged line takes ``price_per_kw`` from its finding's evidence (what the rule saw); the
    others are computed as unit price / capacity_kw from the stored line items.
    """
    cooling, immersion, not_cooling = _cooling_patterns()
    sql = """
    WITH lines AS (
      -- the vocabulary's convention: lower-cased, 服务器 rewritten to "server"
      SELECT *, replace(lower(concat_ws(' ', item_name, model, spec)), '服务器', 'server') AS t
      FROM line_items WHERE run_id = $run
    ),
    flagged AS (
      SELECT item_id, max(TRY_CAST(json_extract_string(evidence, '$.price_per_kw') AS DOUBLE))
               AS ev_per_kw, max(severity) AS severity, true AS flagged
      FROM findings
      WHERE run_id = $run AND mechanism = 'liquid_cooling_markup' AND json_valid(evidence)
      GROUP BY item_id
    )
    SELECT l.item_id, l.source_file, l.source_row, l.tender_id, l.item_name, l.unit_price_cny,
           l.capacity_kw,
           CASE WHEN regexp_matches(l.t, $immersion) THEN 'immersion'
                ELSE 'cold_plate' END AS cooling,
           coalesce(f.ev_per_kw, l.unit_price_cny / l.capacity_kw) AS per_kw,
           coalesce(f.flagged, false) AS flagged
    FROM lines l LEFT JOIN flagged f USING (item_id)
    WHERE regexp_matches(l.t, $cooling) AND NOT regexp_matches(l.t, $not_cooling)
      AND l.capacity_kw > 0 AND l.unit_price_cny > 0
    ORDER BY cooling, per_kw
    """
    con = open_db(db)
    try:
        return con.execute(sql, {"run": run_id, "cooling": cooling, "immersion": immersion,
                                 "not_cooling": not_cooling}).df()
    finally:
        con.close()


def _peer_points_fallback(db: str | Path, run_id: str, min_peers: int = 3) -> pd.DataFrame:
    """Unit price and peer median of accelerator lines, recognised by wording (no enrich).

    Peers are lines of the same accelerator and form (server, card, head, module) and unit;
    groups with fewer than ``min_peers`` lines have no meaningful median and are left out.
    """
    patterns = pd.DataFrame(
        [(i, label, pat) for i, (label, pat) in enumerate(ACCELERATOR_PATTERNS)],
        columns=["priority", "accel", "pattern"],
    )
    sql = """
    WITH lines AS (
      SELECT item_id, source_file, source_row, tender_id, item_name, unit, unit_price_cny,
             upper(concat_ws(' ', item_name, model, spec)) AS t
      FROM line_items WHERE run_id = $run AND unit_price_cny > 0
    ),
    tagged AS (
      SELECT l.*, p.accel,
             CASE WHEN regexp_matches(l.t, '模组|HGX|MODULE') THEN 'module'
                  WHEN regexp_matches(l.t, '机头') THEN 'head'
                  WHEN l.unit IN ('张', '块', '片', '卡') THEN 'card'
                  ELSE 'server' END AS form
      FROM lines l JOIN _patterns p ON regexp_matches(l.t, p.pattern)
      WHERE NOT regexp_matches(lower(l.t), $cooling)
      QUALIFY row_number() OVER (PARTITION BY l.item_id ORDER BY p.priority) = 1
    ),
    peers AS (
      SELECT *, median(unit_price_cny) OVER g AS peer_median, count(*) OVER g AS peers
      FROM tagged WINDOW g AS (PARTITION BY accel, form, coalesce(unit, ''))
    ),
    flagged AS (
      SELECT DISTINCT item_id FROM findings WHERE run_id = $run AND item_id IS NOT NULL
    )
    SELECT p.*, unit_price_cny / peer_median AS ratio, f.item_id IS NOT NULL AS flagged
    FROM peers p LEFT JOIN flagged f USING (item_id)
    WHERE peers >= $min_peers AND peer_median > 0
    ORDER BY accel, form, unit_price_cny
    """
    con = open_db(db)
    try:
        con.register("_patterns", patterns)
        return con.execute(sql, {"run": run_id, "cooling": COOLING_PATTERN + "|改造",
                                 "min_peers": int(min_peers)}).df()
    finally:
        con.close()


def cooling_bands(reference_dir: Path | None = None) -> dict[str, tuple[float, float]]:
    """Cooling reference bands (CNY/kW) from the rule pack's reference book (cooling.yaml).

    Falls back to the sourced defaults when the book cannot be read: a report must still be
    written when the reference folder of the run is gone.
    """
    bands = dict(DEFAULT_COOLING_BANDS)
    try:
        from iccaudit.core.paths import reference_dir as default_reference_dir
        from iccaudit.enrich.reference import ReferenceError as BookError
        from iccaudit.enrich.reference import load_reference
    except ImportError:
        return bands
    try:
        ref = load_reference(reference_dir or default_reference_dir())
    except (BookError, OSError):  # missing or broken book: the defaults are sourced figures
        return bands
    for entry in ref.cooling.per_kw:
        if entry.type in bands and 0 < entry.low <= entry.high:
            bands[entry.type] = (float(entry.low), float(entry.high))
    return bands
