"""Language-neutral mechanics of recognition: how accelerator aliases and card counts become
RE2 patterns. The words themselves are data: the lexicon (``rules/lexicon/``, read by
:mod:`iccaudit.enrich.lexicon`) and the accelerator aliases (``rules/reference/``).

Patterns are matched against normalised text (:mod:`iccaudit.enrich.textnorm`: NFKC, case
folded, simplified Chinese).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: Largest plausible cards per unit; larger numbers are not a card count.
MAX_CARDS_PER_UNIT = 16

_RE2_SPECIAL = set(r"\.^$|?*+()[]{}")


def alias_regex(alias: str) -> str:
    """RE2 fragment for one alias: literal text, any run of space/-/_ as a flexible separator."""
    parts = re.split(r"[\s\-_]+", alias.strip().lower())
    escaped = ["".join("\\" + c if c in _RE2_SPECIAL else c for c in p) for p in parts if p]
    return r"[\s\-_]*".join(escaped)


def alternation(aliases: Sequence[str]) -> str:
    """Alternation of aliases, longest first, so RE2's leftmost-first match picks the longest."""
    unique = sorted(set(aliases), key=lambda a: (-len(re.sub(r"[\s\-_]+", "", a)), a))
    return "|".join(alias_regex(a) for a in unique)


def accel_regex(aliases: Sequence[str], vendors: Sequence[str] = ()) -> str:
    """Whole-token alias match; group 1 is the alias as written.

    Token edges are non-alphanumerics, plus "8x" before an alias ("8xH100") and "x8" after it.
    A vendor word before the alias (``vendors``: "NVIDIA H100 PCIe") is read outside the
    group, so that the longest alias after it wins over an alias that begins with the vendor
    ("nvidia h100").
    """
    vendor = ("(?:(?:" + "|".join(alias_regex(v) for v in vendors) + r")[\s\-_]*)?"
              if vendors else "")
    return (r"(?:^|[^a-z0-9]|\dx)" + vendor + "(" + alternation(aliases)
            + r")(?:$|[^a-z0-9]|x\d)")


def cards_times_regex(aliases: Sequence[str], vendors: Sequence[str],
                      nouns: Sequence[str]) -> str:
    """"8*H100", "8 × A800", "8x nvidia h100": group 1 is the card count; ``vendors`` may
    stand between the count and the model, ``nouns`` stand for a card."""
    vendor = "|".join(alias_regex(v) for v in vendors)
    return (
        r"(?:^|[^0-9.])(\d{1,2})\s*[*×x]\s*(?:(?:" + vendor + r")\s*)?(?:"
        + alternation(aliases) + "|" + alternation(nouns) + ")"
    )


def times_cards_regex(aliases: Sequence[str], nouns: Sequence[str]) -> str:
    """"H100*8", "GPU×8", "卡*8": group 1 is the card count."""
    return (r"(?:" + alternation(list(aliases) + list(nouns)) + r")\s*[*×]\s*(\d{1,2})"
            r"(?:$|[^0-9])")
