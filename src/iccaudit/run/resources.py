"""How a run uses the machine: in memory or out of core, DuckDB's memory limits, and the
detectors imported early, with Python's collector paused.

Every number here was measured on a two-core machine (see docs/performance.md); each is a
setting of the run, not of the data, and none changes what a run finds.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Iterator
from pathlib import Path

#: Inputs above this size are scored out of core: line items go to Parquet, the sandbox is
#: an in-memory DuckDB that spills beyond a memory limit, and the store copies from the
#: Parquet file. One million lines of CSV are about 250 MB.
LARGE_RUN_BYTES = 1024**3
#: Inputs from this size on are enriched in a DuckDB database file in a temporary folder, not
#: in memory: its tables are stored compressed (the wide ``items`` a third of its size in
#: memory). 1 M lines: peak 3.9 -> 3.1 GB for 0.85 s more of enrich (writing ``items``
#: compressed); out of core (where it is always so), less spills. The internal steps' tables
#: stay in memory (temporary: they are dropped once ``items`` is built). Smaller runs gain
#: nothing from it.
SANDBOX_FILE_BYTES = 64 * 1024**2
#: DuckDB's memory limit for the store of an out-of-core run, which writes the lines while
#: the sandbox (with its own limit) scores them: the insert streams from the Parquet file.
STORE_MEMORY_LIMIT = "1GB"
#: Inputs from this size on import the outlier detectors in a thread while enrich runs.
WARM_MODELS_BYTES = 16 * 1024**2
#: DuckDB's memory limit for the out-of-core sandbox and numbering: a quarter of the machine's
#: memory, at least 2 GB. Sorts, joins and windows spill beyond it; the peer medians (an exact
#: quantile per group) cannot, and need about 4 GB at 10 M lines; $ICCAUDIT_MEMORY_LIMIT
#: ("8GB") overrides it.
LARGE_MEMORY_LIMIT = "auto"


#: DuckDB's memory limit for a sandbox in a database file that is not out of core, in bytes
#: per line (at least 1 GB, at most half the machine). Its tables live in the file; without a
#: limit DuckDB keeps every block of them in memory (up to 80 % of the machine) while the
#: rules and the models read them, beside the store's write. With it, blocks of ``items`` not
#: in use are let go (read back from the file, which the system caches). The peer medians,
#: which cannot spill, need about 400 bytes a line; half the machine, not a quarter, so that
#: the largest inputs scored in memory (about 4 M lines) fit on an 8 GB laptop. 1 M lines,
#: 40 % flagged: peak 3.1-3.2 -> 2.8-2.9 GB, about 4 % slower; at 1 GB the run was 2 s slower.
SANDBOX_BYTES_PER_LINE = 1536


def memory_limit() -> str:
    """The out-of-core memory limit (see :data:`LARGE_MEMORY_LIMIT`)."""
    if os.environ.get("ICCAUDIT_MEMORY_LIMIT"):
        return os.environ["ICCAUDIT_MEMORY_LIMIT"]
    if LARGE_MEMORY_LIMIT != "auto":
        return LARGE_MEMORY_LIMIT
    return _megabytes(_share_of_machine(4))


def sandbox_memory_limit(lines: int) -> str:
    """The memory limit of a sandbox of ``lines`` lines kept in a database file, in memory
    (see :data:`SANDBOX_BYTES_PER_LINE`); $ICCAUDIT_MEMORY_LIMIT overrides it too."""
    if os.environ.get("ICCAUDIT_MEMORY_LIMIT"):
        return os.environ["ICCAUDIT_MEMORY_LIMIT"]
    wanted = max(1024**3, SANDBOX_BYTES_PER_LINE * lines)
    return _megabytes(min(wanted, _share_of_machine(2)))


def _share_of_machine(parts: int) -> int:
    """One ``parts``-th of the machine's memory, at least 2 GB, in bytes."""
    return max(2 * 1024**3, machine_memory() // parts)


def _megabytes(size: int) -> str:
    """A size in bytes as DuckDB's memory limit setting (whole megabytes)."""
    return f"{size // 1024**2}MB"


def machine_memory() -> int:
    """The machine's memory in bytes (8 GB where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 8 * 1024**3


def input_bytes(paths: list[Path]) -> int:
    """Total size of the files under ``paths`` (what decides in memory or out of core)."""
    total = 0
    for path in map(Path, paths):
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            for root, _, names in os.walk(path):
                total += sum((Path(root) / n).stat().st_size for n in names
                             if (Path(root) / n).is_file())
    return total


def warm_models(models: bool, config: Path | None, size: int) -> threading.Thread | None:
    """Import and compile the outlier detectors in a thread while enrich runs.

    PyOD pulls in numba, scikit-learn and matplotlib (about 1.5 CPU-seconds here) and numba
    loads its compiled code: work that does not need the data. Enrich is DuckDB's work, done
    outside Python's GIL, so the imports only take their share of the cores there. Beside the
    ingest they also held the GIL that the normalisers' many short Arrow calls wait for
    (1 M lines: ingest 3.6 s with them, 2.3 s without; the run 0.5 s shorter). Any problem
    is left for the models stage to report. Only for inputs whose reading takes a while
    (:data:`WARM_MODELS_BYTES`): a small or refused input would pay the imports for nothing.
    Not joined: the models wait on Python's import lock for any module still importing.
    """
    if not models or size < WARM_MODELS_BYTES:
        return None

    def warm() -> None:
        try:
            with gc_paused():
                from iccaudit.detect.models.config import load_settings
                from iccaudit.detect.models.detectors import warm_up

                warm_up(load_settings(config).ensemble)
        except Exception:  # noqa: BLE001,S110 - the models stage reports it properly
            pass

    thread = threading.Thread(target=warm, name="iccaudit-warm-models", daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for a burst of imports, their objects frozen.

    Imports create hundreds of thousands of objects that live as long as the process, and
    each full collection walks all of them: the detectors' imports triggered three, 0.26 s
    with the GIL held (1 M lines). Afterwards :func:`gc.freeze` moves them out of the
    collector's sight for good; what the run allocates later is collected as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
