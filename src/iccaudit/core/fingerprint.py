"""The fingerprint of a finding as SQL expressions, written once for every place that makes it.

A fingerprint is the first 16 hex digits of the SHA-256 of a JSON array of the finding's
``content`` (tender id, detector, ``rule_version`` and what the implicated line says: item
name, brand, model, spec, quantity, unit, unit price, line total) and the occurrence of that
content among the run's findings (1 unless a tender bills the very same line twice), counted
in (file, sheet, row, finding id) order. Where the line sits, the run and the item id are
left out: rescoring, reordering rows or moving the file keeps it.

The rules' finding queries and the models' findings compute it in the sandbox, as they are
made; the store fills it, with the same expressions, for findings that arrive without one
(a database migrated from schema 1). Content includes the detector, so the occurrences of
one detector's findings are all counted within the one query that makes them.
"""

from __future__ import annotations

#: What the implicated line says: the columns of ``line_items`` in a finding's content.
LINE_CONTENT = ("item_name", "brand", "model", "spec", "quantity", "unit", "unit_price_cny",
                "total_cny")


def content_sql(tender: str, detector: str, version: str, line: str) -> str:
    """The content of a finding as JSON text; the arguments are SQL expressions (``line``:
    the alias of the implicated ``line_items`` row)."""
    cols = ", ".join(f"{line}.{c}" for c in LINE_CONTENT)
    return f"json_array({tender}, {detector}, {version}, {cols})::VARCHAR"


def fingerprint_sql(content: str, source_file: str, source_sheet: str, source_row: str,
                    finding_id: str, partition: str = "") -> str:
    """The fingerprint from a content expression and the columns that order occurrences;
    ``partition``: more PARTITION BY expressions before the content (the store's run_id)."""
    over = f"{partition}, {content}" if partition else content
    return (f"substr(sha256(json_array({content}, row_number() OVER (PARTITION BY {over} "
            f"ORDER BY {source_file}, {source_sheet} NULLS FIRST, {source_row} NULLS FIRST, "
            f"{finding_id}))::VARCHAR), 1, 16)")
