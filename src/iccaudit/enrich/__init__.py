"""Enrich: the in-memory DuckDB sandbox that rules and models read.

:func:`build_sandbox` loads this run's line items and the reference book, creates the views
(see :mod:`iccaudit.enrich.views` and the data dictionary in
:mod:`iccaudit.enrich.dictionary`), then closes the connection to the outside world.
:func:`line_facts` reads from it what the run stores about each line (the report shows
those; it never re-enriches).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from iccaudit.enrich.facts import line_facts
    from iccaudit.enrich.lexicon import Lexicon, LexiconError
    from iccaudit.enrich.lexicon_check import load_lexicon
    from iccaudit.enrich.reference import Reference, ReferenceError, load_reference
    from iccaudit.enrich.sandbox import Sandbox, build_sandbox

__all__ = ["Lexicon", "LexiconError", "Reference", "ReferenceError", "Sandbox", "build_sandbox",
           "line_facts", "load_lexicon", "load_reference"]

# Imported on first use (PEP 562): ``rules validate`` needs only the data dictionary, and
# pandas/duckdb/pydantic would add half a second to its start-up.
_LAZY = {
    "Reference": "iccaudit.enrich.reference",
    "ReferenceError": "iccaudit.enrich.reference",
    "load_reference": "iccaudit.enrich.reference",
    "build_sandbox": "iccaudit.enrich.sandbox",
    "Sandbox": "iccaudit.enrich.sandbox",
    "line_facts": "iccaudit.enrich.facts",
    "Lexicon": "iccaudit.enrich.lexicon",
    "LexiconError": "iccaudit.enrich.lexicon",
    "load_lexicon": "iccaudit.enrich.lexicon_check",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
