"""One file from reading to its accounting: the tables of a file planned (header found, title
read), and at the end its counts, which must add up: ``rows_read == line_items + rejects +
non_items``, or the file is an internal error, never silently short."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from iccaudit.normalise.plan import TablePlan, plan_table
from iccaudit.normalise.tables import TableResult
from iccaudit.read import FileReadError, RawTable, TextStream, read_file

FILE_COLUMNS = [
    "source_file", "content_sha256", "format", "encoding", "sheets", "rows_read",
    "line_items", "rejects", "non_items", "status", "error",
]


@dataclass
class FileRead:
    """One file after reading and header detection, before its rows are normalised."""

    record: dict
    plans: list[TablePlan] = field(default_factory=list)
    others: list[TableResult] = field(default_factory=list)  # sheets without a table
    errors: list[str] = field(default_factory=list)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(3, "int64"))
    failed: bool = False
    stream: TextStream | None = None  # a streamed file: its batches after the first plan

    def fail(self, message: str, line: str | None = None) -> FileRead:
        """The file is an error: none of its rows count, ``line`` (default ``file: message``)
        is what the user reads."""
        self.record.update(status="error", sheets=0, rows_read=0, line_items=0, rejects=0,
                           non_items=0, error=message)
        self.errors = [line or f"{self.record['source_file']}: {message}"]
        self.failed, self.plans, self.others, self.stream = True, [], [], None
        return self

    def skip(self, reason: str) -> FileRead:
        """The file holds nothing to read: accounted as skipped with ``reason``."""
        self.fail(reason)
        self.record["status"], self.errors = "skipped", []
        return self


def _new_record(path: Path) -> dict[str, object]:
    record = dict.fromkeys(FILE_COLUMNS)
    record.update(source_file=str(path), content_sha256="", format=path.suffix.lower().lstrip("."),
                  sheets=0, rows_read=0, line_items=0, rejects=0, non_items=0, status="error")
    return record


def skipped_record(path: str, reason: str) -> dict[str, object]:
    """The ``files`` row of a file found and not read (its type, a lock file …)."""
    record = _new_record(Path(path))
    record.update(status="skipped", error=reason)
    return record


def read_and_plan(path: Path, mapping: dict[str, str] | None,
                  seen: set[tuple[str | None, ...]] | None = None) -> FileRead:
    """Read one file (:func:`iccaudit.read.read_file`) and find the header of each table.

    ``seen`` holds the publications (``RawTable.keys``) of the files read before: a row
    published again here is a repeat (a non-item), and this file's are added to it.
    """
    source = str(path)
    out = FileRead(_new_record(path))
    got = read_file(path)
    out.record["content_sha256"] = got.sha256
    if got.stream is not None:
        out = _open_stream(out, got.stream, source, path.stem, mapping)
        if out.failed:  # its first rows hold no table: the file is not read on
            out.record["content_sha256"] = got.stream.sha256()
        return out
    if got.skipped and got.error is not None:
        return out.skip(got.error)
    if got.error is not None or got.result is None:
        return out.fail(got.error or "cannot read: no tables")
    result = got.result
    if seen is not None:
        for t in result.tables:
            if t.keys is not None:
                mark_repeats(t, seen)
    out.record["format"] = result.format
    out.record["encoding"] = result.encoding
    try:
        planned = [plan_table(t, source, path.stem, mapping) for t in result.tables]
    # Our bug, not the user's: say so in one line, name it internal, keep reading the batch.
    except Exception as exc:  # noqa: BLE001
        return out.fail(internal(exc))
    out.plans = [t for t in planned if isinstance(t, TablePlan)]
    out.others = [t for t in planned if isinstance(t, TableResult)]
    if not out.plans:
        problems = [t.problem for t in out.others if t.problem]
        header_problems = [t.problem for t in out.others if t.header_found and t.problem]
        message = (header_problems or problems or [f"{source}: no sheets with data"])[0]
        return out.fail(message, line=message)
    out.errors = [f"{t.problem} (sheet not read as line items)"
                  for t in out.others if t.header_found]
    out.record.update(rows_read=sum(p.rows_read for p in out.plans)
                      + sum(t.rows_read for t in out.others),
                      sheets=len(out.plans), status="ok")
    return out


def _open_stream(out: FileRead, stream: TextStream, source: str, stem: str,
                 mapping: dict[str, str] | None) -> FileRead:
    """Plan a streamed file from its first batch; the driver pulls the others."""
    out.record["format"] = stream.format
    out.record["encoding"] = stream.encoding
    try:
        first = next(stream.tables)
        plan = plan_table(first, source, stem, mapping)
    except StopIteration:
        plan = None
    except FileReadError as exc:
        return out.fail(str(exc))
    if not isinstance(plan, TablePlan):
        stream.tables.close()
        message = (plan.problem if plan is not None and plan.problem
                   else f"{source}: no line-item table in the first rows")
        return out.fail(message, line=message)
    out.plans, out.stream = [plan], stream
    out.record.update(rows_read=plan.rows_read, sheets=1, status="ok")
    return out


def mark_repeats(table: RawTable, seen: set[tuple[str | None, ...]]) -> None:
    """Rows of ``table`` published already in an earlier file become repeats (non-items)."""
    assert table.keys is not None
    again = np.fromiter((k in seen for k in table.keys), dtype=bool, count=len(table.keys))
    if again.any():
        kinds = (table.kinds.copy() if table.kinds is not None
                 else np.full(len(table.keys), None, dtype=object))
        kinds[again & pd.isna(kinds)] = "repeat"
        table.kinds = kinds
    seen.update(k for k, old in zip(table.keys, table.kinds if table.kinds is not None
                                    else [None] * len(table.keys), strict=True) if old is None)


def internal(exc: BaseException) -> str:
    """The one line a user reads about a bug of ours (the batch goes on)."""
    return (f"internal error while normalising ({type(exc).__name__}: {exc}); "
            "please report it")


def account(r: FileRead) -> None:
    """Per-file counts; a file whose rows do not add up is an internal error, never silent."""
    if r.failed:
        return
    other_non = sum(len(t.non_items) for t in r.others)
    counts = {"line_items": int(r.counts[0]), "rejects": int(r.counts[1]),
              "non_items": int(r.counts[2]) + other_non}
    if r.record["rows_read"] != sum(counts.values()):
        message = (f"internal error: rows do not add up: {counts}, "
                   f"rows_read {r.record['rows_read']}")
        r.record.update(status="error", error=message, sheets=0, rows_read=0, line_items=0,
                        rejects=0, non_items=0)
        r.errors.append(f"{r.record['source_file']}: {message}")
        r.failed = True
        return
    r.record.update(counts)
