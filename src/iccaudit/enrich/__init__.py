"""Enrich: the in-memory DuckDB sandbox that rules and models read.

:func:`build_sandbox` loads this run's line items and the reference book, creates the views
(see :mod:`iccaudit.enrich.views` and the data dictionary in
:mod:`iccaudit.enrich.dictionary`), then closes the connection to the outside world.
"""

from __future__ import annotations

from iccaudit.enrich.reference import Reference, ReferenceError, load_reference
from iccaudit.enrich.sandbox import build_sandbox

__all__ = ["Reference", "ReferenceError", "build_sandbox", "load_reference"]
