"""Turn flagged lines into ``schema.Finding`` rows and peer groups into ``schema.RuleRun`` rows.

Evidence JSON, bilingual messages and ids are built set-at-a-time in SQL on the models'
cursor of the sandbox (our own queries over the frames we hand it; no rule author's text), in
two steps: :func:`draft_findings` makes everything that does not depend on the rules while the
rules still run, into a temp table (:data:`DRAFTED`: it spills beyond the sandbox's memory
limit, as a Python frame would not); :func:`corroborate` completes them, once the rules'
findings are known, with the rules that found the same line (messages, evidence, and the money
left to the rule), as a query that the store reads in batches (:class:`ModelFindings`). At 1 M
lines, 170 k model findings: about 3 s drafted beside the rules, 0.3 s after them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from iccaudit.core import schema
from iccaudit.core.fingerprint import fingerprint_sql
from iccaudit.detect.models.config import ModelSettings
from iccaudit.detect.models.features import CATEGORY_ZH, FEATURES
from iccaudit.detect.rules.runner import LEAN_COLUMNS

if TYPE_CHECKING:
    import duckdb
    import numpy as np

#: Significant digits of the values a model finding's evidence gives (:func:`decimal_sql`).
EVIDENCE_DIGITS = 12


def decimal_sql(column: str) -> str:
    """SQL for ``column`` (DOUBLE) rounded to :data:`EVIDENCE_DIGITS` significant digits.

    The models work on the log scale, and a value back from it is off in its last bits:
    ¥38,700 comes back as 38700.00000000002, 136 units as 136.00000000000006. Rounded, the
    evidence gives the tender's own figures; a value no line has (the median of an even
    number of lines, the geometric mean of the middle two) is given to 12 digits. Outside
    1e-9..1e15, where rounding in binary is inexact or moot, the value is left as it is.
    """
    x = f"CAST({column} AS DOUBLE)"
    return (f"CASE WHEN isfinite({x}) AND abs({x}) BETWEEN 1e-9 AND 1e15 "
            f"THEN round({x}, {EVIDENCE_DIGITS - 1} - CAST(floor(log10(abs({x}))) AS INTEGER)) "
            f"ELSE {x} END")


_SQL = """
WITH ranked AS (
    SELECT d.*, l.zh, l.en,
        row_number() OVER (PARTITION BY d.item_id
                           ORDER BY CASE WHEN d.imputed OR d.z <= 0 THEN 1 ELSE 0 END,
                                    d.z DESC, d.feature) AS rk
    FROM drivers d JOIN labels l USING (feature)
), drv AS (
    SELECT item_id,
        to_json(list(json_object('feature', feature, 'value', {value}, 'peer_median', {median},
                                 'robust_z', round(z, 2), 'imputed', imputed)
                     ORDER BY rk)) AS drivers_json,
        to_json(coalesce(list(feature ORDER BY feature) FILTER (WHERE imputed),
                         []::VARCHAR[])) AS imputed_json,
        string_agg(zh, '、' ORDER BY rk) FILTER (WHERE rk <= 2 AND NOT imputed AND z > 0)
            AS top_zh,
        string_agg(en, ', ' ORDER BY rk) FILTER (WHERE rk <= 2 AND NOT imputed AND z > 0)
            AS top_en
    FROM ranked GROUP BY item_id
), f AS (
    SELECT s.*, pl.zh AS p_zh, pl.en AS p_en, pl.money, pl.mechanism AS p_mechanism,
        pl.relative,
        drv.drivers_json, drv.imputed_json,
        coalesce(drv.top_zh, pl.zh) AS top_zh, coalesce(drv.top_en, pl.en) AS top_en,
        CASE WHEN pl.money THEN '¥' || format('{:,.0f}', s.price_value)
             WHEN s.price_feature = 'value_share' THEN printf('%.1f%%', 100 * s.price_value)
             ELSE format('{:.2f}', s.price_value) END AS v_txt,
        CASE WHEN pl.money THEN '¥' || format('{:,.0f}', s.peer_median)
             WHEN s.price_feature = 'value_share' THEN printf('%.1f%%', 100 * s.peer_median)
             ELSE format('{:.2f}', s.peer_median) END AS m_txt
    FROM scored s
    JOIN labels pl ON pl.feature = s.price_feature
    LEFT JOIN drv USING (item_id)
)
SELECT * EXCLUDE (__content, __ev_body, __ev_lists),
    CASE WHEN __content IS NOT NULL THEN {fingerprint} END AS fingerprint,
    -- the evidence up to its "corroborates" (known once the rules are done) and after it
    substr(__ev_body, 1, length(__ev_body) - 1) || __ev_lists || ',"corroborates":'
        AS __ev_head
FROM (SELECT
    __content,
    substr(sha256($detector || '|' || CAST(item_id AS VARCHAR)), 1, 16) AS group_id,
    substr(sha256($detector || '|' || CAST(item_id AS VARCHAR) || '|'
                  || CAST(item_id AS VARCHAR)), 1, 16) AS finding_id,
    item_id, source_file, source_sheet, source_row, tender_id, line_no,
    coalesce(p_mechanism, mechanism) AS mechanism,
    severity,
    round(score, 6) AS score,
    est_excess_cny,
    CASE WHEN relative
         THEN '单价为同期（采购日期前后窗口内）同类（' || group_zh || '）'
              || CAST(median_peers AS BIGINT) || ' 行中位数的 ' || format('{:.1f}', ratio)
              || ' 倍'
         ELSE p_zh || ' ' || v_txt || '，为同类（' || group_zh || '）中位数 ' || m_txt
              || ' 的 ' || format('{:.1f}', ratio) || ' 倍' END
        || '；主要依据：' || top_zh AS message,
    CASE WHEN relative
         THEN 'price ' || format('{:.1f}', ratio) || 'x the median of '
              || CAST(median_peers AS BIGINT) || ' same-period peers (' || "group"
              || ', bought within the peer window of its date)'
         ELSE p_en || ' ' || v_txt || ' is ' || format('{:.1f}', ratio) || 'x the peer median '
              || m_txt || ' (' || "group" || ')' END
        || '; driven by: ' || top_en AS message_en,
    json_object(
        'model', $detector, 'ensemble', $ensemble, 'group', "group", 'peers', peers,
        'score', round(score, 4), 'price_feature', price_feature,
        'value', {price_value}, 'peer_median', {peer_median},
        'median_peers', CAST(median_peers AS BIGINT),
        'ratio_to_peer_median', round(ratio, 4)
    )::VARCHAR AS __ev_body,
    -- the drivers' JSON as it was made (not parsed again into the object: 1 M lines, 0.6 s)
    ',"drivers":' || coalesce(drivers_json, 'null') || ',"imputed":'
        || coalesce(imputed_json, 'null') AS __ev_lists,
    ',"est_excess_if_alone_cny":' || coalesce(to_json(est_excess_cny)::VARCHAR, 'null') || '}'
        AS __ev_tail
FROM f)
""".replace("{fingerprint}", fingerprint_sql("__content", "source_file", "source_sheet",
                                             "source_row", "finding_id"))
for _name in ("value", "median", "price_value", "peer_median"):
    _SQL = _SQL.replace("{" + _name + "}", decimal_sql(_name))


#: The temp table, on the models' cursor of the sandbox, that holds the drafted findings: a
#: table of the sandbox spills beyond its memory limit, a Python frame would not (10 M lines,
#: 40 % flagged: 1.7 M findings, 2.5 GB of text drafted and as much again completed).
DRAFTED = "__model_findings"

#: Per finding: its chunk (the output is in chunk, item_id order) and the evidence up to its
#: "corroborates" list and after it.
_EXTRA_COLUMNS = {"__chunk": "INTEGER", "__ev_head": "VARCHAR", "__ev_tail": "VARCHAR"}

#: One chunk's drafted findings appended to :data:`DRAFTED`; the columns every model finding
#: shares are constants of the query.
_DRAFT_INSERT = """
INSERT INTO {table} BY NAME
SELECT d.*, $chunk AS __chunk, $run_id AS run_id, $detector AS detector, 'model' AS kind,
    $version AS rule_version,
    CASE WHEN d.mechanism = 'liquid_cooling_markup' THEN '液冷每千瓦单价高于同类（模型）'
         ELSE '价格高于同类（模型）' END AS title,
    CASE WHEN d.mechanism = 'liquid_cooling_markup'
         THEN 'Liquid cooling price per kW above peers (model)'
         ELSE 'Price above peers (model)' END AS title_en
FROM ({draft}) d
"""


#: The drafted findings completed with the rules that found the same lines (``__rules``:
#: item_id, detector of the rules' findings): named in the messages and the evidence, and
#: their money left to those rules (``est_excess_cny`` NULL; the amount stays in the
#: evidence as ``est_excess_if_alone_cny``). In the drafted order.
_COMPLETE_SQL = """
WITH corr AS (
    SELECT item_id, list(DISTINCT detector ORDER BY detector) AS rules
    FROM __rules WHERE item_id IS NOT NULL GROUP BY item_id
)
SELECT d.* EXCLUDE (__ev_head, __ev_tail, message, message_en, est_excess_cny),
    CASE WHEN c.rules IS NULL THEN d.est_excess_cny END AS est_excess_cny,
    d.message || coalesce('；佐证规则 ' || array_to_string(c.rules, ', '), '') AS message,
    d.message_en || coalesce('; corroborates ' || array_to_string(c.rules, ', '), '')
        AS message_en,
    d.__ev_head || coalesce(to_json(c.rules)::VARCHAR, '[]') || d.__ev_tail AS evidence
FROM {table} d LEFT JOIN corr c USING (item_id)
"""


class ModelFindings:
    """The models' findings of a run, staged in a temp table of ``cursor`` (a cursor of the
    sandbox: it spills), completed by a query read on demand: as Arrow batches streamed to
    the store (:meth:`reader`), or as one frame (:meth:`frame`). :attr:`lean` holds the
    ``LEAN_COLUMNS`` of each (who found what, and how much, as the run keeps the rules'
    findings). :meth:`close` lets the table go.
    """

    def __init__(self, cursor: duckdb.DuckDBPyConnection, sql: str,
                 fixed: pa.Table | None) -> None:
        from iccaudit.core.duck import fetch_frame

        # ``fixed`` is registered on the cursor as ``__fixed``: kept here as long as the query
        self._cursor, self._sql, self._fixed = cursor, sql, fixed
        cols = ", ".join(f'"{c}"' for c in LEAN_COLUMNS)
        self.lean: pd.DataFrame = fetch_frame(cursor, f"SELECT {cols} FROM ({sql})")

    def reader(self, rows: int) -> pa.RecordBatchReader:
        """The findings (``schema.Finding`` columns) as Arrow batches of ``rows``."""
        reader: pa.RecordBatchReader = self._cursor.sql(self._select()).to_arrow_reader(rows)
        return reader

    def frame(self) -> pd.DataFrame:
        """The findings as one frame (``schema.Finding`` columns)."""
        from iccaudit.core.duck import fetch_frame

        return fetch_frame(self._cursor, self._select())

    def close(self) -> None:
        """Close the cursor (and its temp table with it); idempotent."""
        self._cursor.close()

    def _select(self) -> str:
        cols = ", ".join(f'"{c}"' for c in schema.columns("findings"))
        return f"SELECT {cols} FROM ({self._sql})"


def _drafted_ddl(table: str) -> str:
    """The drafted findings' temp table: the findings' columns but the evidence, and
    :data:`_EXTRA_COLUMNS`."""
    cols = [f'"{name}" {schema.sql_type(field.annotation)}'
            for name, field in schema.Finding.model_fields.items() if name != "evidence"]
    cols += [f'"{name}" {typ}' for name, typ in _EXTRA_COLUMNS.items()]
    return f"CREATE OR REPLACE TEMP TABLE {table} ({', '.join(cols)})"


def draft_findings(
    con: duckdb.DuckDBPyConnection, run_id: str, settings: ModelSettings,
    flagged: pd.DataFrame, drivers: pd.DataFrame, locations: pd.DataFrame,
) -> None:
    """Draft the findings of the flagged lines into the temp table :data:`DRAFTED` of
    ``con``, before the rules' findings are known (the models draft them while the rules
    still run; :func:`corroborate` completes them).

    ``locations`` holds ``item_id`` and the columns that locate a line (source_file,
    source_sheet, source_row, tender_id, line_no) for at least the flagged lines, and
    ``__content``, the content of each line's finding, from which its fingerprint is made
    (:func:`~iccaudit.detect.models.read_locations`; without it the store makes it).
    """
    con.execute(_drafted_ddl(DRAFTED))
    if flagged.empty:
        return
    meta_cols = ["item_id", "source_file", "source_sheet", "source_row", "tender_id", "line_no",
                 "__content"]
    meta = locations[[c for c in meta_cols if c in locations.columns]]
    meta = meta[meta["item_id"].isin(flagged["item_id"])]
    # Labels arrive as categoricals (one per million lines is cheap); text from here on.
    cats = [c for c in flagged.columns if isinstance(flagged[c].dtype, pd.CategoricalDtype)]
    scored = flagged.astype(dict.fromkeys(cats, object)).merge(meta, on="item_id", how="left")
    for c in meta_cols:
        if c not in scored.columns:
            scored[c] = None
    # The Chinese group name per distinct group (tens), mapped to the lines: no string work
    # per finding.
    scored["group_zh"] = scored["group"].map({g: _group_zh(g) for g in scored["group"].unique()})
    scored["mechanism"] = scored["feature_set"].map(
        {k: v.mechanism for k, v in settings.categories.items()}
    ).fillna(settings.categories["default"].mechanism)
    labels = pa.table({
        "feature": list(FEATURES),
        "zh": [f.zh for f in FEATURES.values()],
        "en": [f.en for f in FEATURES.values()],
        "money": [f.money for f in FEATURES.values()],
        "mechanism": [f.mechanism for f in FEATURES.values()],
        "relative": [f.relative for f in FEATURES.values()],
    })
    insert = _DRAFT_INSERT.format(table=DRAFTED, draft=_SQL)
    params: dict[str, str | int] = {
        "detector": settings.model_name, "ensemble": "+".join(settings.ensemble),
        "run_id": run_id, "version": settings_version(settings)}
    con.register("labels", labels)
    try:
        for chunk, (lines, their_drivers) in enumerate(_chunks(scored, drivers)):
            # As Arrow: DuckDB scans pandas text columns one Python object at a time.
            con.register("scored", pa.Table.from_pandas(lines, preserve_index=False))
            con.register("drivers", pa.Table.from_pandas(their_drivers, preserve_index=False))
            con.execute(insert, params | {"chunk": chunk})
            con.unregister("scored")
            con.unregister("drivers")
            del lines, their_drivers
    finally:
        con.unregister("labels")


def corroborate(con: duckdb.DuckDBPyConnection, rule_findings: pd.DataFrame | None,
                foreign: tuple[np.ndarray, np.ndarray] | None = None) -> ModelFindings:
    """The drafted findings of ``con`` (:func:`draft_findings`) completed: the rules that
    found the same lines (``rule_findings``: item_id and detector) named in the messages and
    evidence, and their money left to those rules (:data:`_COMPLETE_SQL`), set-at-a-time in
    SQL. ``foreign``: the lines in another currency (:func:`~iccaudit.detect.currency.
    foreign_lines`), whose money the few findings on them move into their evidence
    (:func:`~iccaudit.detect.currency.money_in_yuan_only`)."""
    from iccaudit.core.duck import fetch_frame
    from iccaudit.detect.currency import money_in_yuan_only

    if (rule_findings is None or not len(rule_findings)
            or not {"item_id", "detector"} <= set(rule_findings.columns)):
        rule_findings = pd.DataFrame({"item_id": [], "detector": []})
    rules = pa.table({"item_id": pa.array(rule_findings["item_id"], pa.int64()),
                      "detector": pa.array(rule_findings["detector"], pa.string())})
    con.register("__rules_in", rules)
    try:  # a table of the sandbox: it spills, and the frame can go
        con.execute("CREATE OR REPLACE TEMP TABLE __rules AS SELECT * FROM __rules_in")
    finally:
        con.unregister("__rules_in")
    done = _COMPLETE_SQL.format(table=DRAFTED)
    fixed = None
    if foreign is not None and len(foreign[0]):
        con.execute("CREATE OR REPLACE TEMP TABLE __foreign AS "
                    "SELECT unnest($ids::BIGINT[]) AS item_id",
                    {"ids": [int(i) for i in foreign[0]]})
        on = "item_id IN (SELECT item_id FROM __foreign)"
        rows = fetch_frame(con, f"SELECT * FROM ({done}) WHERE {on}")
        if len(rows):
            fixed = pa.Table.from_pandas(money_in_yuan_only(None, rows, foreign=foreign),
                                         preserve_index=False)
            con.register("__fixed", fixed)
            done = (f"SELECT * FROM ({done}) WHERE NOT {on} "
                    "UNION ALL BY NAME SELECT * FROM __fixed")
    return ModelFindings(con, f"SELECT * FROM ({done}) ORDER BY __chunk, item_id", fixed)


def build_findings(
    run_id: str, settings: ModelSettings, flagged: pd.DataFrame, drivers: pd.DataFrame,
    locations: pd.DataFrame, rule_findings: pd.DataFrame | None,
) -> pd.DataFrame:
    """Finding rows (``schema.Finding`` columns) for the flagged lines, drafted and
    corroborated on a private in-memory DuckDB (:func:`draft_findings`, :func:`corroborate`)."""
    import duckdb

    con = duckdb.connect()
    try:
        draft_findings(con, run_id, settings, flagged, drivers, locations)
        found = corroborate(con, rule_findings)
        return found.frame()
    finally:
        con.close()


#: Flagged lines drafted in one query at most. The query's windows and JSON of 1.7 M findings
#: (10 M lines, 40 % flagged) took 50 s and 10 GB in one piece; in pieces, linear time and
#: the memory of one piece.
DRAFT_CHUNK_LINES = 250_000


def _chunks(scored: pd.DataFrame, drivers: pd.DataFrame
            ) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """The flagged lines and their drivers in pieces of about :data:`DRAFT_CHUNK_LINES`,
    whole tenders to a piece: a fingerprint counts the occurrences of a content, which
    names its tender, so the same content never spans two pieces."""
    import numpy as np

    n = -(-len(scored) // DRAFT_CHUNK_LINES)
    if n <= 1:
        yield scored, drivers
        return
    tender, _ = pd.factorize(scored["tender_id"])
    piece = np.where(tender < 0, 0, tender % n)
    for k in range(n):
        lines = scored[piece == k]
        yield lines, drivers[drivers["item_id"].isin(lines["item_id"])]


def settings_version(settings: ModelSettings) -> str:
    """A short hash of the models' settings: the ``rule_version`` of their findings."""
    import hashlib
    import json

    # keys sorted: the same settings written in another order are the same version
    text = json.dumps(settings.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _group_zh(group: str) -> str:
    """``gpu_server/H100`` -> ``GPU服务器/H100``: the category part in Chinese."""
    category, sep, rest = group.partition("/")
    return CATEGORY_ZH.get(category, category) + sep + rest


def build_rule_runs(run_id: str, settings: ModelSettings, groups: pd.DataFrame) -> pd.DataFrame:
    """One ``schema.RuleRun`` row per peer group; small groups are not_evaluated, not clean."""
    cols = schema.columns("rule_runs")
    if groups.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    ok = groups["status"] == "ok"
    return pd.DataFrame({
        "run_id": run_id,
        "detector": settings.model_name + ":" + groups["group"].astype(str),
        "kind": "model",
        "status": groups["status"],
        "rows_evaluated": groups["lines"].where(ok, 0).astype("Int64"),
        "rows_applicable": groups["lines"].astype("Int64"),
        "hits": groups["hits"].where(ok).astype("Int64"),
        "error": groups["error"].astype(object),
        "warning": None,
    })[cols]


def single_run(run_id: str, settings_name: str, error: str) -> pd.DataFrame:
    """The one not_evaluated row when the models could not run at all."""
    return pd.DataFrame([{
        "run_id": run_id, "detector": settings_name, "kind": "model", "status": "not_evaluated",
        "rows_evaluated": 0, "rows_applicable": None, "hits": None, "error": error,
        "warning": f"outlier models not evaluated: {error}",
    }], columns=schema.columns("rule_runs"))
