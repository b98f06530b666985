"""Outlier models: PyOD detectors on peer groups of line items (issue 5).

How a line becomes a model finding
----------------------------------
1. **Peer group** (:func:`~iccaudit.detect.models.features.assign_groups`): category x
   accelerator model for accelerator lines (never mixed across models), else the finest of
   category x cooling type, category x unit x item kind, category x unit, category that has
   ``min_peers`` lines. A group below ``min_peers`` is not compared and gives a ``rule_runs``
   row with status ``not_evaluated`` (detector ``model:<ensemble>:<group>``).
2. **Features** per category from ``rules/models.yaml`` (log price per card / kW / TB / unit,
   log ratio to reference and to the peer median, log quantity, log share of the tender).
   A feature missing for the whole group is dropped; a missing value is imputed with the group
   median and listed under ``imputed`` in the evidence (never zero).
3. **Ensemble**: each detector of ``ensemble`` is fitted on the group, its training scores
   (``decision_scores_``) normalised within the group and combined (``normalise``, ``combine``)
   into a score in [0, 1].
4. **Finding** when score >= ``score_threshold`` AND the line's price feature is at least
   ``min_price_ratio`` x its peer median: only lines priced *above* their peers. The peer
   median is that of the same item kind in the group when it has ``min_median_peers`` lines.
5. **Severity calibration** (``severity`` in models.yaml, first row met wins): high when
   score >= 0.95 and ratio >= 3; medium when score >= 0.9 and ratio >= 2; else low. A model
   never gives critical: an outlier is a lead, not proof.
6. **Money**: ``est_excess_cny`` = unit price x quantity x (1 - 1 / ratio), which is
   (unit price - peer median) x quantity for a per-unit price; never negative; NULL when the
   feature is not a price (lump sums judged by share). When a rule already flagged the line,
   the finding is kept with ``"corroborates": [rule ids]`` and ``est_excess_cny`` NULL, so
   money is never counted twice (the value stays in evidence as ``est_excess_if_alone_cny``).
7. **Explanation**: evidence lists every feature with its value, group median, robust z and
   whether it was imputed; the message names the two features with the largest robust z.
   Values come back from the log scale, so the evidence gives them to 12 significant digits
   (the tender's own ¥38,700, not 38700.00000000002).

Ids are hashes of detector + item_id, and IForest (when used) is seeded from ``seed``: the same
inputs and seed give the same findings, whatever order the view returns the rows in (each
group's lines are fitted in item_id order).

Scale (issue 7): the models read only the columns they score with, in Arrow batches, into one
numpy array per number and int32 dictionary codes per text column (:func:`read_items`, about
120 bytes a line); peer groups are integer codes; results go into one array per field; the
locations of a finding are read for the flagged lines only. Every detector sees every line of
its group (no sampling: COPOD ranks all rows in ``fit``, and PyOD's ``decision_function`` on
new rows re-ranks the training rows with them, so a sample would cost more, not less).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from iccaudit.detect.models.config import ModelConfigError, ModelSettings, load_settings
from iccaudit.detect.models.detectors import DETECTORS, OutlierDetector

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import duckdb
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from iccaudit.detect.models.findings import ModelFindings

__all__ = [
    "DETECTORS",
    "REQUIRED_COLUMNS",
    "ModelConfigError",
    "ModelSettings",
    "OutlierDetector",
    "load_settings",
    "read_items",
    "read_locations",
    "run_models",
    "run_models_staged",
]

#: Columns of the items view the models cannot do without.
REQUIRED_COLUMNS = ("item_id", "tender_id", "source_file", "source_row", "unit_price_cny",
                    "quantity")
#: Columns that locate a finding; read for the flagged lines only.
LOCATION_COLUMNS = ("item_id", "source_file", "source_sheet", "source_row", "tender_id",
                    "line_no")
#: Numeric columns read when present (features and the lump-sum flag), as DOUBLE.
NUMERIC_COLUMNS = (
    "unit_price_cny", "quantity", "capacity_kw", "storage_tb", "price_per_kw", "card_count",
    "cards_per_unit", "ratio_to_ref_high", "ratio_to_peer_median", "line_value_share",
    "is_lump_sum", "line_total_cny", "peer_price_cny", "peer_median_90d", "peer_count_90d",
)


#: Rows per Arrow batch when reading the items.
_BATCH = 262_144


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_items(
    con: duckdb.DuckDBPyConnection, settings: ModelSettings | None = None
) -> pa.Table:
    """The columns of the ``items`` view the models score with, as one narrow Arrow table.

    Only the numeric feature columns (as DOUBLE), the peer-group key columns of ``settings``
    and ``item_name`` are read (about 120 bytes per line: numbers as float64, text as int32
    dictionary codes; no Python object per value), in the order the view returns them. The
    columns that locate a finding are read later, for flagged lines only
    (:func:`read_locations`).
    """
    import numpy as np
    import pyarrow as pa

    settings = settings or load_settings()
    described = con.execute("SELECT * FROM items LIMIT 0").description
    types = {d[0]: str(d[1]) for d in described}
    missing = [c for c in REQUIRED_COLUMNS if c not in types]
    if missing:
        raise LookupError(f"the items view lacks column(s) {', '.join(missing)}")
    keys = {k for lv in settings.group_levels for k in lv.keys if k != "item_kind"}
    text = [c for c in dict.fromkeys(["category", *sorted(keys), "item_name"]) if c in types]
    # Names come from the view's own description, never from user text; quoted anyway.
    select = ["item_id"]
    select += [f"TRY_CAST({_quote(c)} AS DOUBLE) AS {_quote(c)}"
               for c in NUMERIC_COLUMNS if c in types]
    select += [_quote(c) if types[c] == "VARCHAR" else f"CAST({_quote(c)} AS VARCHAR) AS "
               f"{_quote(c)}" for c in text if c not in NUMERIC_COLUMNS]
    numeric = [c for c in ("item_id", *NUMERIC_COLUMNS) if c in types]
    text = [c for c in text if c not in NUMERIC_COLUMNS]
    if "currency" in types and "category" in text:
        # lines priced in another currency are peers of lines in that currency only: their
        # category carries it ("other PYG"), and such a category has the default features
        select[select.index(_quote("category"))] = (
            "CASE WHEN coalesce(\"currency\", 'CNY') = 'CNY' THEN \"category\" ELSE "
            "coalesce(\"category\", 'other') || ' ' || \"currency\" END AS \"category\"")
    # Streamed in batches into one array per column: the text never exists as whole string
    # columns (a code per line and the distinct values instead), and the numbers land in
    # their final arrays (no chunked table, no second copy). No ORDER BY: the scorer orders
    # the lines by item_id within each peer group, which is all that needs an order.
    n = con.execute("SELECT count(*) FROM items").fetchall()[0][0]
    # Filled up front: written batch by batch, fresh pages cost 4x more (measured at 10 M).
    values = {c: np.full(n, 0 if c == "item_id" else np.nan) for c in numeric}
    codes = {c: np.full(n, -1, dtype=np.int32) for c in text}
    seen: dict[str, dict[str, int]] = {c: {} for c in text}
    at = 0
    for batch in con.sql(f"SELECT {', '.join(select)} FROM items").to_arrow_reader(_BATCH):
        end = at + batch.num_rows
        if end > n:
            raise LookupError("the items view changed while it was read")
        for c in numeric:
            values[c][at:end] = batch.column(c).to_numpy(zero_copy_only=False)
        for c in text:
            codes[c][at:end] = _global_codes(batch.column(c), seen[c])
        at = end
    if at != n:
        raise LookupError("the items view changed while it was read")
    arrays: dict[str, pa.Array] = {c: pa.array(values.pop(c)) for c in numeric}
    for c in text:
        dictionary = pa.array(list(seen[c]), type=pa.string())
        idx = codes.pop(c)
        indices: pa.Array = pa.array(idx, mask=idx < 0)  # int32, NULL where no value
        arrays[c] = pa.DictionaryArray.from_arrays(indices, dictionary)
    return pa.table(arrays)


def _global_codes(col: pa.Array, seen: dict[str, int]) -> np.ndarray:
    """Codes of one batch's text in the read's running dictionary ``seen`` (-1 = NULL).

    Work per distinct value of the batch (a handful), not per line.
    """
    import numpy as np

    enc = col.dictionary_encode()
    # A dictionary holds no NULL (those stay in the indices): text only.
    local = cast("list[str]", enc.dictionary.to_pylist())
    for v in local:
        seen.setdefault(v, len(seen))
    lut = np.array([seen[v] for v in local] + [-1], dtype=np.int32)
    idx = enc.indices.to_numpy(zero_copy_only=False)  # NULL -> NaN when there are any
    if idx.dtype.kind == "f":
        idx = np.where(np.isnan(idx), -1, idx).astype(np.int64)
    batch_codes: np.ndarray = lut[idx]
    return batch_codes


def read_locations(con: duckdb.DuckDBPyConnection, item_ids: Sequence[int] | np.ndarray,
                   content_of: tuple[str, str] | None = None) -> pd.DataFrame:
    """The columns that locate a finding (file, sheet, row, tender, line) for some items.

    ``content_of``: (detector, rule_version) of the findings to be made on these lines; then
    ``__content`` holds each one's content (:mod:`iccaudit.core.fingerprint`).
    """
    from iccaudit.core.duck import fetch_frame
    from iccaudit.core.fingerprint import LINE_CONTENT, content_sql

    described = [d[0] for d in con.execute("SELECT * FROM items LIMIT 0").description]
    cols = [_quote(c) for c in LOCATION_COLUMNS if c in described]
    params: dict[str, object] = {"ids": [int(i) for i in item_ids]}
    if content_of is not None and {"tender_id", *LINE_CONTENT} <= set(described):
        cols.append(content_sql("tender_id", "$detector", "$version", "items") + " AS __content")
        params |= {"detector": content_of[0], "version": content_of[1]}
    return fetch_frame(
        con,
        f"SELECT {', '.join(cols)} FROM items "
        "WHERE item_id IN (SELECT unnest($ids::BIGINT[]))",
        params,
    )


def run_models(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    config: Path | None = None,
    seed: int = 0,
    rule_findings: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score the ``items`` view and return (findings, rule_runs) frames: the findings of
    :func:`run_models_staged` (on a cursor of ``con``) read into one frame."""
    cursor = con.cursor()
    try:
        found, rule_runs = run_models_staged(cursor, run_id, config, seed, rule_findings)
        return found.frame(), rule_runs
    finally:
        cursor.close()


def run_models_staged(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    config: Path | None = None,
    seed: int = 0,
    rule_findings: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
) -> tuple[ModelFindings, pd.DataFrame]:
    """Score the ``items`` view; (findings, rule_runs). The findings are staged in a temp
    table of ``con`` (a cursor of the sandbox, which spills beyond its memory limit) and
    read from there (:class:`~iccaudit.detect.models.findings.ModelFindings`); the caller
    closes them, which closes ``con``.

    ``rule_findings`` (the rules' findings, which a model finding on the same line
    corroborates) may be a function giving them: it is called once the findings are drafted,
    so that the models can score and draft while the rules still run.

    Raises :class:`ModelConfigError` (one line) for an invalid settings file. When the items
    view cannot be read, returns no findings and one ``not_evaluated`` rule_runs row.
    """
    import duckdb

    from iccaudit.detect.currency import foreign_lines
    from iccaudit.detect.models.findings import (
        build_rule_runs,
        corroborate,
        draft_findings,
        settings_version,
        single_run,
    )
    from iccaudit.detect.models.scoring import score_items

    settings = load_settings(config)
    try:
        items = [read_items(con, settings)]
    except (duckdb.Error, LookupError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        draft_findings(con, run_id, settings, _no_rows(), _no_rows(), _no_rows())
        return (corroborate(con, None),
                single_run(run_id, settings.model_name, f"cannot read items: {first}"))
    # Handed over, not kept (pop): score_items frees the table once it has its columns.
    scored = score_items(items.pop(), settings, seed=seed)
    flagged, drivers, groups = scored.flagged_lines(), scored.drivers, scored.groups
    del scored  # the per-line arrays of every line (10 M lines: about 3 GB) are let go
    locations = read_locations(con, flagged["item_id"].to_numpy(),
                               content_of=(settings.model_name, settings_version(settings)))
    # drafted while the rules may still run; their findings are waited for only then
    draft_findings(con, run_id, settings, flagged, drivers, locations)
    del flagged, drivers, locations
    if callable(rule_findings):
        rule_findings = rule_findings()
    found = corroborate(con, rule_findings, foreign_lines(con))
    return found, build_rule_runs(run_id, settings, groups)


def _no_rows() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame()
