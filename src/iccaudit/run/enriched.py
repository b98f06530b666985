"""Enriched lines kept for rules-only re-runs (``rescore --rules-only``).

The rule author's loop re-runs the rules on one stored run again and again, and the enriched
views (``items`` and the others the rules read) are the same each time as long as what they
are derived from is: the source run's lines (a stored run never changes), the reference book,
the ``price_date``, whether ``raw`` is carried, and the tool's version. The first rules-only
re-run builds its sandbox in a database file beside the findings database,
``<db>.enriched/<source run>-<key>.duckdb``, where the key is a SHA-256 of all of those (the
reference book's files byte for byte); a later re-run with the same key opens that file
read-only instead of enriching again. Anything that changes the key (an edited reference
file, another ``--price-date``, another version) misses the file and enriches afresh, so a
re-run gives what its configuration gives, never a stale table. Delete the folder at any time
to free the space (about a third of the findings database per run).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from iccaudit import __version__

if TYPE_CHECKING:
    import duckdb

#: Bumped when the sandbox's layout changes in a way the version does not say.
_LAYOUT = "1"


def enriched_path(db: Path, source_run: str, reference_dir: Path,
                  price_date: dt.date | None, raw: bool, lexicon_sha256: str = "") -> Path:
    """Where the enriched sandbox of ``source_run`` under this configuration is kept
    (``lexicon_sha256``: the recognition lexicon's hash, which recognition depends on)."""
    h = hashlib.sha256()
    for part in (_LAYOUT, __version__, source_run, str(price_date), str(raw), lexicon_sha256):
        h.update(part.encode() + b"\0")
    for f in sorted(p for p in Path(reference_dir).rglob("*") if p.is_file()):
        h.update(f.relative_to(reference_dir).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in source_run)
    return db.with_name(db.name + ".enriched") / f"{safe}-{h.hexdigest()[:16]}.duckdb"


def open_enriched(path: Path) -> duckdb.DuckDBPyConnection:
    """The kept sandbox, read-only and locked down as a freshly built one is (no file access,
    settings fixed); the rules' temporary tables live in the connection's own memory."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def building_path(path: Path) -> Path:
    """The file a new sandbox is built in; renamed to ``path`` once the run succeeded, so a
    failed or interrupted run never leaves a half-built file under the real name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name(path.name + ".building")
    building.unlink(missing_ok=True)
    return building
