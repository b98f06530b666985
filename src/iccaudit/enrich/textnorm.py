"""Text normalisation before recognition: the same steps for the lines and for the lexicon.

1. Unicode NFKC (full-width digits, letters and punctuation to ASCII, ㎾ to kW);
2. case folding;
3. traditional to simplified Chinese, character by character, from OpenCC's
   ``TSCharacters`` dictionary (shipped with opencc-python-reimplemented; only its data is
   read, as one translation table);
4. the lexicon's regional variants and rewrites (plain substring replacements, in order).

Every step is a pandas string method over the whole column (one call per column, not per
line); the sandbox runs it once per distinct text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the functions work on the caller's Series; nothing imports pandas here
    import pandas as pd

#: Replacements: (from, to) pairs applied in order.
Rewrites = Sequence[tuple[str, str]]


@cache
def t2s_table(keep: str = "") -> dict[int, str]:
    """Traditional -> simplified, one character each (the first OpenCC candidate); the
    characters of ``keep`` stay as written (昇 of 昇腾 is a name, not a variant of 升)."""
    path = resources.files("opencc").joinpath("dictionary", "TSCharacters.txt")
    table: dict[int, str] = {}
    for row in path.read_text(encoding="utf-8").splitlines():
        source, _, targets = row.partition("\t")
        first = targets.split(" ")[0] if targets else ""
        if len(source) == 1 and len(first) == 1 and first != source and source not in keep:
            table[ord(source)] = first
    return table


def fold(texts: pd.Series, keep: str = "") -> pd.Series:
    """NFKC, case folding, traditional -> simplified but for the characters of ``keep``;
    missing values stay missing."""
    s = texts.astype("object")
    return s.str.normalize("NFKC").str.casefold().str.translate(t2s_table(keep))


def rewrite(texts: pd.Series, pairs: Rewrites) -> pd.Series:
    """Each (from, to) replacement, in order, on the whole column."""
    for old, new in pairs:
        texts = texts.str.replace(old, new, regex=False)
    return texts


def normalise_list(texts: Sequence[str], *pair_lists: Rewrites, keep: str = "") -> list[str]:
    """Strings (the lexicon's own words and examples, a few hundred) through the steps of
    :func:`fold` and the replacements, in plain Python: checking a lexicon
    (``iccaudit rules validate``) does not load pandas."""
    table = t2s_table(keep)
    out = [unicodedata.normalize("NFKC", t).casefold().translate(table) for t in texts]
    for pairs in pair_lists:
        for old, new in pairs:
            out = [t.replace(old, new) for t in out]
    return out
