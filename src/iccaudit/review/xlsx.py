"""``iccaudit verdicts import``: read the verdicts a reviewer typed into an exported workbook.

Every row is checked before anything is written, and the import is all or nothing: the
workbook must come from this database (its ``iccaudit_database_id`` property), each verdict
must be one of the statuses, name a fingerprint of the exported run that still exists in the
latest run, and leave the key columns (where the finding points) as exported; a verdict
recorded on the same finding by someone else since the export is a conflict. Any problem:
one line per row, the database unchanged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from iccaudit import store
from iccaudit.core.schema import SCHEMA_VERSION, VERDICT_STATUSES
from iccaudit.report import export as ex
from iccaudit.store.verdicts import VerdictError, insert_verdicts

#: Columns that say where a finding points; edited, the row is refused.
KEY_COLUMNS = ("detector", "tender_id", "source_file", "source_sheet", "source_row",
               "line_no")
_HEADERS = dict(ex.FINDING_COLUMNS)


@dataclass
class ImportResult:
    """What an import recorded."""

    recorded: dict[str, int] = field(default_factory=dict)
    already: int = 0
    blank: int = 0

    @property
    def total(self) -> int:
        return sum(self.recorded.values())


def read_workbook(path: Path) -> tuple[dict[str, str], pd.DataFrame]:
    """The workbook's iccaudit properties and its findings rows (sheet, row, and the
    columns by name); :class:`VerdictError` when it is not an iccaudit export."""
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True)
        props = {p.name: str(p.value)
                 for p in wb.custom_doc_props}  # type: ignore[attr-defined]  # no stub
        sheets = [n for n in wb.sheetnames if n.startswith("发现 findings")]
        wb.close()
        # as text: a whole number reads "4" (openpyxl gives int cells), as exported
        frames = pd.read_excel(path, sheet_name=sheets, dtype=str) if sheets else {}
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one line for the user
        raise VerdictError([(f"{path}: not a readable xlsx workbook "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0]})")]) from None
    if ex.PROP_DATABASE not in props or not sheets:
        raise VerdictError([(f"{path}: not a workbook written by `iccaudit export --xlsx` "
                            "(no iccaudit properties or no findings sheet)")])
    parts = []
    wanted = {h: c for c, h in ex.FINDING_COLUMNS if c in (
        "verdict_new", "reason_new", "fingerprint", *KEY_COLUMNS)}
    for name, frame in frames.items():
        missing = [h for h in wanted if h not in frame.columns]
        if missing:
            raise VerdictError([(f"{path}: sheet {name!r}: column(s) {missing} missing "
                                "(renamed or deleted?)")])
        part = frame[list(wanted)].rename(columns=wanted)
        part.insert(0, "sheet", name)
        part.insert(1, "row", range(2, len(part) + 2))
        parts.append(part)
    return props, pd.concat(parts, ignore_index=True)


def _text(s: pd.Series) -> pd.Series:
    """Cell values (read as text) stripped, blanks as NA."""
    text = s.astype("string").str.strip()
    return text.mask(text == "")


def import_verdicts(path: str | Path, db: str | Path, *, reviewer: str) -> ImportResult:
    """Validate every row of the workbook, then record its verdicts in one transaction.

    Raises :class:`VerdictError` (every problem, one line each; nothing recorded) or
    :class:`iccaudit.store.StoreError` (database missing or in use by another process).
    """
    path = Path(path)
    props, rows = read_workbook(path)
    rows["status"] = _text(rows["verdict_new"]).str.lower()
    rows["reason"] = _text(rows["reason_new"])
    rows["fingerprint"] = _text(rows["fingerprint"])
    result = ImportResult(blank=int(rows["status"].isna().sum()))
    where = path.name + ": sheet '" + rows["sheet"] + "' row " + rows["row"].astype(str)
    problems: list[str] = []

    def flag(mask: pd.Series, text: pd.Series | str) -> None:
        problems.extend((where[mask] + ": " + (text[mask] if isinstance(text, pd.Series)
                                              else text)).tolist())

    flag(rows["status"].isna() & rows["reason"].notna(),
         f"a reason without a verdict (column '{ex.VERDICT_HEADER}')")
    rows = rows[rows["status"].notna()].copy()
    where = where[rows.index]
    flag(~rows["status"].isin(VERDICT_STATUSES),
         "unknown verdict '" + rows["status"].fillna("") + "' (one of "
         + ", ".join(VERDICT_STATUSES) + ")")
    flag(rows["fingerprint"].isna(), f"no fingerprint (column '{ex.FINGERPRINT_HEADER}')")
    dup = rows["fingerprint"].notna() & rows["fingerprint"].duplicated(keep=False)
    flag(dup, "fingerprint '" + rows["fingerprint"].fillna("") + "' has a verdict on "
         "another row too")

    con = store.connect(db)  # holds the file: no other import can run meanwhile
    try:
        version = store.schema_version(con)
        if version is None:
            raise store.StoreError(f"{db}: not an iccaudit database")
        if version != SCHEMA_VERSION:  # checked, not migrated: a refused import changes nothing
            raise store.StoreError(f"{db}: schema version {version}, this iccaudit reads "
                                   f"{SCHEMA_VERSION}; run `iccaudit doctor --db {db}` first")
        this_db = store.database_id(con)
        if props.get(ex.PROP_DATABASE) != this_db:
            raise VerdictError([(f"{path.name}: exported from another database (id "
                                f"{props.get(ex.PROP_DATABASE) or 'none'}), not from {db} "
                                f"(id {this_db}); export from this database and review again")])
        run_id = props.get(ex.PROP_RUN, "")
        seq = int(props.get(ex.PROP_VERDICT_SEQ) or 0)
        if not con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchall():
            raise VerdictError([f"{path.name}: its run {run_id} is no longer in {db}"])
        checked = _against_db(con, rows, run_id, seq)
        fp = rows["fingerprint"].fillna("")
        flag(checked["unknown"], "unknown fingerprint '" + fp + "' (not a finding of this "
             "database)")
        flag(checked["not_exported"], "fingerprint '" + fp + "' is not a finding of the "
             "exported run " + run_id)
        flag(checked["gone"], "finding '" + fp + "' no longer exists in the latest run; "
             "export again")
        for key in KEY_COLUMNS:
            mask = checked["known"] & (_text(rows[key]).fillna("")
                                       != checked["db_" + key].fillna(""))
            flag(mask, f"column '{_HEADERS[key]}' edited: '" + _text(rows[key]).fillna("")
                 + "', exported as '" + checked["db_" + key].fillna("") + "'")
        same = (checked["later_status"] == rows["status"]) & (
            checked["later_reason"].fillna("") == rows["reason"].fillna(""))
        conflict = checked["later_status"].notna() & ~same
        flag(conflict, "finding '" + rows["fingerprint"].fillna("") + "' got the verdict '"
             + checked["later_status"].fillna("") + "' from " + checked["later_by"].fillna("")
             + " after this workbook was exported; export again to see it")
        if problems:
            raise VerdictError(problems)
        todo = rows[~(checked["later_status"].notna() & same)]
        result.already = len(rows) - len(todo)
        todo = todo.assign(run_id=checked.loc[todo.index, "latest_run"])
        con.execute("BEGIN TRANSACTION")
        try:
            insert_verdicts(con, todo, reviewer=reviewer, source=f"xlsx:{path.name}",
                            made_at=dt.datetime.now(dt.UTC).replace(tzinfo=None))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
    result.recorded = {str(s): int(n) for s, n in todo["status"].value_counts().items()}
    return result


_CHECK_SQL = """
WITH exported AS (
  SELECT fingerprint, any_value(detector) AS detector, any_value(tender_id) AS tender_id,
         any_value(source_file) AS source_file, any_value(source_sheet) AS source_sheet,
         any_value(source_row) AS source_row, any_value(line_no) AS line_no
  FROM findings WHERE run_id = $run GROUP BY fingerprint),
anywhere AS (SELECT DISTINCT fingerprint FROM findings),
latest AS (SELECT DISTINCT fingerprint, run_id FROM latest_findings),
later AS (SELECT * FROM current_verdicts WHERE verdict_id > $seq)
SELECT w.i, e.fingerprint IS NOT NULL AS known,
       a.fingerprint IS NULL AS unknown,
       a.fingerprint IS NOT NULL AND e.fingerprint IS NULL AS not_exported,
       e.fingerprint IS NOT NULL AND l.fingerprint IS NULL AS gone,
       l.run_id AS latest_run,
       e.detector AS db_detector, e.tender_id AS db_tender_id, e.source_file AS db_source_file,
       e.source_sheet AS db_source_sheet, CAST(e.source_row AS VARCHAR) AS db_source_row,
       e.line_no AS db_line_no,
       v.status AS later_status, v.reason AS later_reason, v.reviewer AS later_by
FROM wb w
LEFT JOIN exported e USING (fingerprint)
LEFT JOIN anywhere a USING (fingerprint)
LEFT JOIN latest l USING (fingerprint)
LEFT JOIN later v USING (fingerprint)
ORDER BY w.i
"""


def _against_db(con: object, rows: pd.DataFrame, run_id: str, seq: int) -> pd.DataFrame:
    """Per workbook row: where its fingerprint is known, the key columns as exported (made
    safe for a spreadsheet, as the export wrote them) and any verdict made since."""
    import duckdb

    assert isinstance(con, duckdb.DuckDBPyConnection)
    wb = pd.DataFrame({"i": range(len(rows)),
                       "fingerprint": rows["fingerprint"].astype(object).to_numpy()})
    con.register("wb", wb)
    try:
        out = con.execute(_CHECK_SQL, {"run": run_id, "seq": seq}).df()
    finally:
        con.unregister("wb")
    out.index = rows.index
    keys = ["db_" + k for k in KEY_COLUMNS]
    out[keys] = ex.neutralise(out[keys])
    for k in keys:
        out[k] = _text(out[k])
    for col in ("unknown", "not_exported", "gone", "known"):
        out[col] = out[col].fillna(False).astype(bool) & rows["fingerprint"].notna()
    for col in ("later_status", "later_reason", "later_by"):
        out[col] = out[col].astype("string")
    return out
