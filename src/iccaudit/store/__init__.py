"""The findings database: one DuckDB file, its schema, and runs written in one transaction.

A run is written inside ``BEGIN ... COMMIT``: a run that fails or is killed midway leaves the
database exactly as it was. DuckDB holds a file lock, so a second writer fails at once; we
turn that into a one-line :class:`StoreError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from iccaudit.core import schema
from iccaudit.core.duck import fetch_arrow, fetch_frame, sql_string  # noqa: F401 - re-exported
from iccaudit.store.coverage import COVERAGE_VIEW
from iccaudit.store.views import create_views, fill_fingerprints

if TYPE_CHECKING:
    import pyarrow as pa


class StoreError(Exception):
    """A database problem a user can act on (locked, newer schema, not an iccaudit file)."""


META_DDL = "CREATE TABLE IF NOT EXISTS iccaudit_meta (key VARCHAR PRIMARY KEY, value VARCHAR)"


def connect(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the database file, with a clear error when another process holds it."""
    path = Path(path)
    if read_only and not path.exists():
        raise StoreError(f"{path}: no such database (run `iccaudit score ... --db {path}` first)")
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            raise StoreError(
                f"{path}: the database is in use by another iccaudit process; "
                "wait for it to finish and run again"
            ) from None
        raise StoreError(f"{path}: cannot open the database: {text.splitlines()[0]}") from None
    except duckdb.Error as exc:
        raise StoreError(f"{path}: not a DuckDB database ({str(exc).splitlines()[0]})") from None
    return con


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables that are missing and check the schema version."""
    con.execute(META_DDL)
    rows = con.execute("SELECT value FROM iccaudit_meta WHERE key = 'schema_version'").fetchall()
    row = rows[0] if rows else None
    if row is not None and int(row[0]) > schema.SCHEMA_VERSION:
        raise StoreError(
            f"the database has schema version {row[0]}, newer than this iccaudit "
            f"({schema.SCHEMA_VERSION}); upgrade iccaudit"
        )
    if row is not None and int(row[0]) < schema.SCHEMA_VERSION:
        raise StoreError(
            f"the database has schema version {row[0]}, older than this iccaudit "
            f"({schema.SCHEMA_VERSION}); run `iccaudit doctor --db FILE` to migrate it"
        )
    for table in schema.TABLES:
        con.execute(schema.ddl(table))
    con.execute(COVERAGE_VIEW)
    if row is None:
        con.execute(
            "INSERT INTO iccaudit_meta VALUES ('schema_version', ?)", [str(schema.SCHEMA_VERSION)]
        )
    _ensure_database_id(con)
    create_views(con)


#: Names this database apart from every other (an export carries it; an import checks it).
_DATABASE_ID_SQL = """
INSERT INTO iccaudit_meta SELECT 'database_id', uuid()::VARCHAR
WHERE NOT EXISTS (SELECT 1 FROM iccaudit_meta WHERE key = 'database_id')
"""


def _ensure_database_id(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_DATABASE_ID_SQL)


def database_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The database's identity (set when it was created or migrated), None if it has none."""
    rows = con.execute("SELECT value FROM iccaudit_meta WHERE key = 'database_id'").fetchall()
    return rows[0][0] if rows else None


#: Non-additive migrations: version v -> statements that bring a database from v to v + 1.
#: Additive changes (a new table or a new nullable column) need no entry: ``migrate`` adds
#: whatever the pydantic models have and the database lacks.
MIGRATIONS: dict[int, list[str]] = {}


def schema_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The database's schema version; None when it is not an iccaudit database."""
    has_meta = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'iccaudit_meta'"
    ).fetchall()[0][0]
    if not has_meta:
        return None
    rows = con.execute("SELECT value FROM iccaudit_meta WHERE key = 'schema_version'").fetchall()
    return int(rows[0][0]) if rows else 0


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Bring an older database to the current schema in one transaction; return what was done."""
    done: list[str] = []
    version = schema_version(con) or 0
    con.execute("BEGIN TRANSACTION")
    try:
        for v in range(version, schema.SCHEMA_VERSION):
            for stmt in MIGRATIONS.get(v, []):
                con.execute(stmt)
                done.append(stmt)
        for table in schema.TABLES:
            con.execute(schema.ddl(table))
            have = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
            for name, field in schema.TABLES[table].model_fields.items():
                if name not in have:
                    stmt = f'ALTER TABLE {table} ADD COLUMN "{name}" {schema.sql_type(field.annotation)}'
                    con.execute(stmt)
                    done.append(stmt)
        con.execute(COVERAGE_VIEW)
        con.execute(META_DDL)
        con.execute(
            "INSERT OR REPLACE INTO iccaudit_meta VALUES ('schema_version', ?)",
            [str(schema.SCHEMA_VERSION)],
        )
        _ensure_database_id(con)
        # findings of older runs get a fingerprint too (their rule_version is unknown: they
        # match no newer finding, but verdicts can be recorded on them)
        fill_fingerprints(con)
        create_views(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return done


class StoredRows:
    """One run's rows of a table of this database, under another run id: a rescore's copy of
    the lines it scores, made by one ``INSERT ... SELECT`` inside the database (no Arrow
    round trip: 1 M lines fetched and written back took 1.1 s + 2 s, copied 1.3 s)."""

    def __init__(self, table: str, source_run: str, run_id: str, num_rows: int) -> None:
        self.table, self.source_run, self.run_id = table, source_run, run_id
        self.num_rows = num_rows
        self.column_names = schema.columns(table)

    def __len__(self) -> int:
        return self.num_rows

    def sql(self) -> str:
        """A FROM item with the source run's rows, ``run_id`` the new run's."""
        return (f"(SELECT {sql_string(self.run_id)}::VARCHAR AS run_id, * EXCLUDE (run_id) "
                f"FROM {self.table} WHERE run_id = {sql_string(self.source_run)})")


class ParquetRows:
    """Rows in a Parquet file, read by DuckDB as a stream: a table larger than memory.

    Quacks like an Arrow table where the store and the sandbox need it (``column_names``,
    ``num_rows``, ``len()``); both read it with DuckDB's ``read_parquet`` (three times faster
    and leaner than scanning the Arrow dataset) through :meth:`sql`.
    ``constants`` adds columns of one value each (the run id) and ``item_ids_from`` numbers
    the rows from a column of the file (``seq + 1``), so that staged rows already in order
    need no rewrite.
    """

    def __init__(self, path: str | Path, *, constants: dict[str, str] | None = None,
                 item_ids_from: str | None = None) -> None:
        import pyarrow.parquet as pq

        self.path = Path(path)
        meta = pq.ParquetFile(self.path).metadata
        self.num_rows = meta.num_rows
        self.constants = dict(constants or {})
        self.item_ids_from = item_ids_from
        names = [meta.schema.column(i).path.split(".")[0] for i in range(meta.num_columns)]
        names = list(dict.fromkeys(names))  # a list column has several leaf paths
        #: raw staged as cells with a text column beside them (see ingest.ParquetSink)
        self.raw_beside = schema.RAW_JSON_BESIDE_CELLS in names
        extra = [*self.constants, *(["item_id"] if item_ids_from else [])]
        self.column_names = extra + [n for n in names if n not in extra
                                     and n not in (item_ids_from,
                                                   schema.RAW_JSON_BESIDE_CELLS)]

    def __len__(self) -> int:
        return self.num_rows

    def sql(self, position: str | None = None) -> str:
        """A FROM item with every column (paths and values quoted as SQL literals), ``raw``
        as JSON text, and each row's position in the file as column ``position`` when that
        is given."""
        extra = [f'{sql_string(str(v))}::VARCHAR AS "{k}"' for k, v in self.constants.items()]
        if self.item_ids_from:
            extra.append(f'"{self.item_ids_from}" + 1 AS item_id')
        hidden = [f'"{self.item_ids_from}"'] if self.item_ids_from else []
        if self.raw_beside:
            beside = schema.RAW_JSON_BESIDE_CELLS
            extra.append(f'coalesce("{beside}", {schema.RAW_CELLS_AS_JSON}) AS "raw"')
            hidden += ['"raw"', f'"{beside}"']
        options = ""
        if position:
            hidden.append("file_row_number")
            extra.append(f'file_row_number AS "{position}"')
            options = ", file_row_number = true"
        star = f"* EXCLUDE ({', '.join(hidden)})" if hidden else "*"
        return (f"(SELECT {', '.join([*extra, star])} "
                f"FROM read_parquet({sql_string(str(self.path))}{options}))")


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: Any) -> int:
    """Append a pandas DataFrame, Arrow table or Arrow record batch reader to ``table`` by
    column name, set-at-a-time; the number of rows (-1 for a reader: not counted).

    Columns of the table that the frame lacks are NULL; extra frame columns are an error.
    """
    import pyarrow as pa

    cols = schema.columns(table)
    reader = isinstance(frame, pa.RecordBatchReader)
    names = list(frame.schema.names if reader else frame.column_names
                 if hasattr(frame, "column_names") else frame.columns)
    extra = [c for c in names if c not in cols]
    if extra:
        raise ValueError(f"{table}: unknown columns {extra}")
    if not reader and len(frame) == 0:
        return 0
    # by name, so a migrated table whose columns were appended in another order still fits
    target = ", ".join(f'"{c}"' for c in cols)
    # raw held as the cells (a large file's ingest): its JSON text is written here, as the
    # rows are
    arrow_schema = getattr(frame, "schema", None)
    cells = isinstance(arrow_schema, pa.Schema) and schema.raw_is_cells(arrow_schema)
    select = ", ".join(f'{schema.RAW_CELLS_AS_JSON} AS "raw"' if c == "raw" and cells
                       else f'"{c}"' if c in names else f'NULL AS "{c}"' for c in cols)
    if isinstance(frame, ParquetRows | StoredRows):  # DuckDB's own: parallel, within its limit
        con.execute(f"INSERT INTO {table} ({target}) SELECT {select} FROM {frame.sql()}")
        return len(frame)
    view = f"_incoming_{table}"
    con.register(view, frame)
    try:
        con.execute(f"INSERT INTO {table} ({target}) SELECT {select} FROM {view}")
    finally:
        con.unregister(view)
    return -1 if reader else len(frame)


def _drained(table: Any) -> Any:
    """An Arrow table as a reader of its record batches that lets go of each batch once read:
    the memory of rows already written comes back while the rest are being written (when
    nothing else holds the table)."""
    import pyarrow as pa

    batches = table.to_batches()
    batches.reverse()  # popped from the end: first batch first

    def each() -> Any:
        while batches:
            yield batches.pop()

    return pa.RecordBatchReader.from_batches(table.schema, each())


def _check_tables(tables: Mapping[str, Any]) -> None:
    unknown = set(tables) - set(schema.TABLES)
    if unknown:
        raise ValueError(f"unknown tables {sorted(unknown)}")


class RunWriter:
    """One run's transaction: opened early, so that the lines can be written while the run
    is still being scored, and committed (or rolled back) as one.

    Opening takes the file lock (a second writer fails at once, before any work is done).
    :meth:`insert_in_background` queues tables for one writer thread and returns at once
    (DuckDB releases the GIL): they are written in the order they were queued.
    :meth:`commit` waits for it, and :meth:`abort` interrupts it, rolls back and removes the
    database file when this writer created it. Nothing is visible to a reader before the
    commit, and a process killed midway leaves the database as it was.
    """

    def __init__(self, path: str | Path, *, memory_limit: str | None = None) -> None:
        import queue

        self.path = Path(path)
        self.created = not self.path.exists()
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stopping = False  # aborting: the queued work is skipped
        self.background_s = 0.0
        self._closed = False
        self.con = connect(self.path)
        try:
            # Rows are identified by run_id/item_id, never by position: letting DuckDB write
            # the row groups in parallel halves the time of a large run's write (1 M lines:
            # 4 -> 2 s) and the file (the checkpoint at close has nothing left to rewrite).
            self.con.execute("SET preserve_insertion_order = false")
            # No vacuum at the checkpoint that closes the run: it merged the partly filled
            # row groups the parallel inserts leave (each insert's last ones) by rewriting
            # them, alone on one core at the very end (1 M lines, 609 k findings: 0.9 s
            # of a 0.95 s close), for the same 6 row groups and a larger file (206 MB
            # against 170 MB without it). The run only appends: nothing else needs it.
            self.con.execute("SET max_vacuum_tasks = 0")
            if memory_limit:  # beside an out-of-core sandbox with its own limit
                self.con.execute("SET memory_limit = ?", [memory_limit])
            self.con.execute("BEGIN TRANSACTION")
            ensure_schema(self.con)
        except BaseException:
            self.abort()
            raise

    def insert(self, tables: Mapping[str, Any]) -> None:
        """Append each table's rows (table name -> frame), in the schema's table order, once
        the queued work is done."""
        _check_tables(tables)
        self.wait()
        self._insert(dict(tables))

    def _insert(self, tables: dict[str, Any]) -> None:
        """Write ``tables`` in the schema's table order, taking each out of the dict as its
        write begins; an Arrow table batch by batch, each batch let go once written. A table
        may be a function giving it, called when its write begins."""
        import pyarrow as pa

        for table in schema.TABLES:  # creation order: runs first
            frame = tables.pop(table, None)
            if callable(frame):
                frame = frame()
            if isinstance(frame, pa.Table):
                frame = _drained(frame)
            if frame is not None:
                insert_frame(self.con, table, frame)
            del frame

    def fetch_arrow(self, sql: str, params: object = None) -> pa.Table:
        """A query's result on the run's connection (inside its transaction), once the
        queued work is done."""
        self.wait()
        return fetch_arrow(self.con, sql, params)

    def insert_in_background(self, tables: dict[str, Any]) -> None:
        """Queue :meth:`insert` for the writer thread; an earlier background error is raised.

        The writer takes the tables over: each leaves ``tables`` as its write begins, and an
        Arrow table is written batch by batch, each batch let go once written. A caller that
        keeps no other reference gets the memory of the rows back while they are written
        (1 M lines: the rows and their raw JSON, most of a gigabyte).
        """
        _check_tables(tables)
        self._submit(lambda: self._insert(tables))

    def _submit(self, job: Callable[[], None]) -> None:
        self._raise_error()
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="iccaudit-store",
                                            daemon=True)
            self._thread.start()
        self._jobs.put(job)

    def _work(self) -> None:
        """The writer thread: the queued jobs in order; after an error or an abort, the rest
        are skipped (the error is raised by the next call)."""
        import time

        while (job := self._jobs.get()) is not None:
            if self._error is None and not self._stopping:
                t0 = time.perf_counter()
                try:
                    job()
                except BaseException as exc:  # noqa: BLE001 - handed to the caller by wait()
                    self._error = exc
                self.background_s += time.perf_counter() - t0  # all background work of the run
            del job  # the tables it held are let go
            self._jobs.task_done()
        self._jobs.task_done()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def wait(self) -> None:
        """Wait for the queued work; raise its error."""
        if self._thread is not None:
            self._jobs.join()
        self._raise_error()

    def _stop(self) -> None:
        """End the writer thread (its queue drained)."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    def commit(self) -> None:
        """Wait for the queued work and commit; on any error, :meth:`abort` and raise."""
        try:
            self.wait()
            self._stop()
            fill_fingerprints(self.con)  # findings that arrived without one
            self.con.execute("COMMIT")
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self.con.close()

    def abort(self) -> None:
        """Stop, roll back and close; a database file this writer created is removed.
        Safe to call again (a failed commit has aborted already)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._stopping = True  # what is still queued is skipped
            self.con.interrupt()  # a long insert stops at its next chunk
            self._stop()
        self._error = None
        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # no transaction open (it failed to begin, or the commit itself failed)
        self.con.close()
        if self.created:
            for leftover in (self.path, self.path.with_name(self.path.name + ".wal")):
                leftover.unlink(missing_ok=True)


def write_run(path: str | Path, tables: Mapping[str, Any]) -> None:
    """Write one run's rows (table name -> frame) to the database in a single transaction."""
    _check_tables(tables)  # before the file is opened (or created)
    writer = RunWriter(path)
    try:
        writer.insert(tables)
    except BaseException:
        writer.abort()
        raise
    writer.commit()


def latest_run_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The run_id of the most recent complete run, or None for an empty database."""
    rows = con.execute(
        "SELECT run_id FROM runs WHERE status = 'complete' ORDER BY started_at DESC LIMIT 1"
    ).fetchall()
    return rows[0][0] if rows else None
