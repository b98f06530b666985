"""Read: tender files -> raw tables of cell text, one stage before :mod:`iccaudit.normalise`.

:func:`collect` finds the files under the paths given; :func:`read_file` reads one with the
reader of its format (:data:`READERS`: CSV/TSV in UTF-8 or GB18030, XLSX/XLSM, Parquet, JSON,
JSON lines) into :class:`RawTable` s, every cell as text or null, with the row a person sees.
Nothing is parsed here; a file that cannot be read is an outcome with a one-line reason,
never an exception.

Modules: :mod:`.base` (the types), :mod:`.cells` (values to Arrow text), :mod:`.text` and
:mod:`.large_text` (delimited text, small and large), :mod:`.excel`, :mod:`.records`
(Parquet, JSON), :mod:`.files` (discovery and one file read).
"""

from iccaudit.read.base import (
    MAX_FILE_BYTES,
    FileReadError,
    FileSkipped,
    IngestError,
    RawTable,
    ReadResult,
)
from iccaudit.read.files import READERS, FileContent, collect, read_file
from iccaudit.read.large_text import TextStream

__all__ = [
    "MAX_FILE_BYTES", "READERS", "FileContent", "FileReadError", "FileSkipped", "IngestError",
    "RawTable",
    "ReadResult", "TextStream", "collect", "read_file",
]
