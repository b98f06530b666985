"""What every file of the reference book shares: the strict pydantic base, the source tags,
the shape of a price date and the one-line error."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

#: S sourced (article, public datasheet), D derived from sourced figures, E estimate.
Source = Literal["S", "D", "E"]
#: Where a value sits in a YAML document: keys and list indexes from the top.
Loc = tuple[str | int, ...]
#: A price date as the book writes it: ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``.
PRICE_DATE_RE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


class ReferenceError(Exception):
    """A reference-book file that cannot be used; ``str()`` is one line with file:line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _range_in_order(self) -> _Strict:
        """A price range reads low <= high <= peak (when it has those fields)."""
        low, high = getattr(self, "low", None), getattr(self, "high", None)
        peak = getattr(self, "peak", None)
        if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
            raise ValueError(f"low {low:g} is above high {high:g}")
        if isinstance(peak, int | float) and isinstance(high, int | float) and peak < high:
            raise ValueError(f"peak {peak:g} is below high {high:g}")
        return self
