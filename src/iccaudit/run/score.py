"""``score``: tender files to a stored run, read -> normalise -> enrich -> detect -> store.

Read top-down in :func:`_score`. Nothing reaches the database until every stage has
succeeded; the run is written in one transaction (:meth:`Run.store_transaction`).

In memory or out of core (:data:`~iccaudit.run.resources.LARGE_RUN_BYTES`): out of core,
items go to a Parquet file, DuckDB numbers them, the sandbox spills into the work folder
beyond a memory limit, and the store inserts from the Parquet file. Both give the same rows.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from iccaudit.run.options import RunError, ScoreOptions, ScoreResult
from iccaudit.run.resources import (
    LARGE_RUN_BYTES,
    SANDBOX_FILE_BYTES,
    STORE_MEMORY_LIMIT,
    input_bytes,
    memory_limit,
    warm_models,
)
from iccaudit.run.stages import Run, with_run

if TYPE_CHECKING:
    import pyarrow as pa

    from iccaudit.normalise import IngestBatch, ParquetSink
    from iccaudit.store import ParquetRows


def run_score(opts: ScoreOptions) -> ScoreResult:
    """Run the whole pipeline and write the run; raise RunError with a one-line message."""
    size = input_bytes(opts.paths)
    large = opts.large if opts.large is not None else size > LARGE_RUN_BYTES
    if not large and size < SANDBOX_FILE_BYTES:
        return _score(opts, None, size, None)
    with tempfile.TemporaryDirectory(prefix="iccaudit-", dir=opts.work_dir) as folder:
        sandbox_file = Path(folder) / "sandbox.duckdb"
        return _score(opts, Path(folder) if large else None, size, sandbox_file)


def _score(opts: ScoreOptions, work: Path | None, size: int,
           sandbox_file: Path | None) -> ScoreResult:
    """The pipeline; ``work``: a folder for out-of-core files (None: all in memory);
    ``sandbox_file``: where the sandbox is built (None: in memory)."""
    run = Run.begin(opts, mapping=opts.mapping, rates=opts.rates)  # an invalid pack is refused before reading
    with run.timed("ingest_s"):
        batch, sink = _read(opts, work)
    run.identify([{"path": p, "sha256": h} for p, h in
                  zip(batch.files["source_file"], batch.files["content_sha256"], strict=True)])
    warm_models(opts.models, opts.models_config, size)

    if sink is not None and work is not None:
        with run.timed("number_s"):
            items: pa.Table | ParquetRows = _numbered_parquet(sink, run.run_id, work)
    else:
        assert batch.items_arrow is not None  # in memory: the items are in the batch
        items = _numbered(batch.items_arrow, run.run_id)
        batch.items_arrow = None  # free the unsorted table
    n_items = len(items)
    files = with_run(batch.files, run.run_id)
    lines: dict[str, Any] = {"files": files, "line_items": items,
             "rejects": with_run(batch.rejects, run.run_id),
             "non_items": with_run(batch.non_items, run.run_id)}
    del items  # the store's copy is the only one: it frees the rows it has written

    with run.store_transaction(opts.db, STORE_MEMORY_LIMIT if work is not None else None):
        if work is not None:
            # the lines are a Parquet file that both read: the write runs beside enrich
            # (10 M lines: 117 -> 111 s)
            source = lines["line_items"]
            run.write_in_background(lines)
            run.detect(source, spill=work / "spill", sandbox_file=sandbox_file)
        else:
            # in memory the write starts once the sandbox has its copy of the lines
            run.detect(lines["line_items"], once_copied=lines, sandbox_file=sandbox_file)
        options = {
            "paths": [str(p) for p in opts.paths],
            "mapping": str(opts.mapping) if opts.mapping else None,
            "rates": str(opts.rates) if opts.rates else None,
            "rules_dirs": [str(d) for d in run.rule_dirs],
            "models": opts.models,
            "seed": opts.seed,
            "price_date": opts.price_date.isoformat() if opts.price_date else None,
            "skipped_invalid_rules": sorted(run.ruleset.invalid_ids),
        }
        run.finish(files, (n_items, len(batch.rejects), len(batch.non_items)), options)
    return run.result(opts.db, files, batch.skipped, batch.errors)


def _read(opts: ScoreOptions, work: Path | None) -> tuple[IngestBatch, ParquetSink | None]:
    """Read and normalise the inputs (out of core, the items into a Parquet file)."""
    from iccaudit.normalise import IngestError, ParquetSink, ingest

    sink = ParquetSink(work / "incoming.parquet") if work is not None else None
    try:
        batch = ingest(opts.paths, mapping=opts.mapping, progress=opts.progress, sink=sink,
                       rates=opts.rates)
    except IngestError as exc:
        raise RunError(str(exc)) from None
    if batch.n_items == 0 and batch.rejects.empty:
        raise RunError(f"nothing could be read: {_nothing_read(batch)}")
    return batch, sink


#: How many files' errors the "nothing could be read" message names (the rest are counted).
_NAMED_ERRORS = 20


def _nothing_read(batch: IngestBatch) -> str:
    """Why a batch gave no line item: every file's error, the files skipped, or neither."""
    files = batch.files
    skipped = int((files["status"] == "skipped").sum()) if len(files) else 0
    if batch.errors:
        more = len(batch.errors) - _NAMED_ERRORS
        detail = "; ".join(batch.errors[:_NAMED_ERRORS]) + (f"; and {more} more" if more > 0
                                                            else "")
        return detail + (f" ({skipped} file(s) skipped)" if skipped else "")
    if skipped == len(files) and skipped:
        reasons = sorted(set(files["error"].dropna()))
        return (f"{skipped} file(s) found, none readable: "
                + "; ".join(reasons[:5]) + (" …" if len(reasons) > 5 else ""))
    if len(files):
        return (f"no line items in {len(files) - skipped} file(s) (only header, title or "
                "blank rows)" + (f"; {skipped} file(s) skipped" if skipped else ""))
    return "no tender files found"


def _numbered(items: pa.Table, run_id: str) -> pa.Table:
    """The line items in (file, sheet, row) order with ``run_id`` and ``item_id`` in front.

    Arrow throughout: the pandas frame of Python strings took several times the memory.
    """
    import numpy as np
    import pyarrow as pa

    from iccaudit.normalise import item_order

    order = item_order(items)
    if order is not None:  # one file comes in order already
        items = items.take(order)
    n = items.num_rows
    items = items.add_column(0, "item_id", pa.array(np.arange(1, n + 1, dtype="int64")))
    return items.add_column(0, "run_id", pa.repeat(pa.scalar(run_id, pa.string()), n))


def _numbered_parquet(sink: ParquetSink, run_id: str, work: Path) -> ParquetRows:
    """The staged items with ``run_id`` and ``item_id`` in (file, sheet, row) order.

    Input already in that order is numbered where it lies (``seq + 1``, read by the sandbox
    and the store); otherwise DuckDB sorts it out of core (memory limit, spilling into
    ``work``) into a new file, leaving out the files that failed.
    """
    import duckdb

    from iccaudit.core import schema
    from iccaudit.store import ParquetRows

    cols = ", ".join(f'"{c}"' for c in schema.columns("line_items") if c not in
                     ("run_id", "item_id"))
    out = work / "line_items.parquet"
    if sink.in_order and not sink.failed:
        # already in (file, sheet, row) order: number in place, no rewrite (10 M lines: 14 s)
        return ParquetRows(sink.path, constants={"run_id": run_id}, item_ids_from="seq")
    item_id = "row_number() OVER (ORDER BY source_file, source_sheet NULLS FIRST, source_row)"
    con = duckdb.connect(config={"memory_limit": memory_limit(),
                                 "temp_directory": str(work / "spill")})
    try:
        con.execute(
            f"COPY (SELECT $run_id::VARCHAR AS run_id, {item_id} AS item_id, {cols} "
            f"FROM {ParquetRows(sink.path).sql()} "
            "WHERE NOT list_contains($failed, source_file) ORDER BY item_id) "
            "TO $out (FORMAT parquet, COMPRESSION snappy)",
            {"run_id": run_id, "failed": sorted(sink.failed), "out": str(out)})
    finally:
        con.close()
    sink.path.unlink()
    return ParquetRows(out)
