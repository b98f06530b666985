"""Money of findings on lines priced in another currency than yuan.

Such a line keeps its currency (no rate table converted it), so an overpayment estimated on
it is in that currency too: it is never added to the yuan totals. Its ``est_excess_cny`` is
left empty, the evidence says the amount and its currency, and its messages show its amounts
with their currency code instead of ¥. Rules that compare with the yuan reference book run on
the lines in yuan only (:func:`compares_with_reference`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable

    import duckdb
    import pandas as pd


def foreign_lines(con: duckdb.DuckDBPyConnection) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, currency codes) of the lines of ``items`` not in yuan (empty when none, or
    when the view has no currency column)."""
    import duckdb

    try:
        rows = con.execute("SELECT item_id, currency FROM items "
                           "WHERE coalesce(currency, 'CNY') <> 'CNY'").fetchnumpy()
    except duckdb.Error:
        return np.zeros(0, "int64"), np.zeros(0, object)
    return np.asarray(rows["item_id"], "int64"), np.asarray(rows["currency"], object)


def money_in_yuan_only(con: duckdb.DuckDBPyConnection | None, findings: pd.DataFrame,
                       foreign: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """``findings`` with the overpayment of lines in another currency moved out of
    ``est_excess_cny`` into their evidence (as ``est_excess``, beside ``currency``).

    ``foreign``: the :func:`foreign_lines` of the sandbox, when they were read before (then
    ``con`` is not used)."""
    import pandas as pd

    if findings.empty or "item_id" not in findings:
        return findings
    if foreign is None:
        assert con is not None, "money_in_yuan_only needs the sandbox or its foreign lines"
        foreign = foreign_lines(con)
    ids, codes = foreign
    if not len(ids):
        return findings
    code_of = pd.Series(codes, index=ids)
    hit = findings["item_id"].isin(ids).to_numpy()
    if not hit.any():
        return findings
    out = findings.copy()
    rows = out.loc[hit]
    money = rows["est_excess_cny"].astype("float64")
    code = rows["item_id"].map(code_of).astype(str)
    amount = money.map(lambda v: "null" if pd.isna(v) else repr(round(float(v), 2)))
    head = '{"currency":"' + code + '","est_excess":' + amount
    body = rows["evidence"].astype(str).str.slice(1)
    out.loc[hit, "evidence"] = (head + np.where(body.str.strip() == "}", "", ",") + body).values
    out.loc[hit, "est_excess_cny"] = None
    # the messages name the amounts of such a line in its currency, not in yuan
    for cur in sorted(set(code)):
        rows_of = out.index[np.flatnonzero(hit)[(code == cur).to_numpy()]]
        for col in ("message", "message_en"):
            if col in out:
                text = out.loc[rows_of, col].astype("string")
                out.loc[rows_of, col] = (
                    text.str.replace("¥", f"{cur} ", regex=False).astype(object).values)
    return out


#: Columns that hold or derive from the reference book's yuan prices; a rule reading one (and
#: no peer statistic) compares a line's price with yuan.
REFERENCE_COLUMNS = frozenset(("ref_low_cny", "ref_high_cny", "ref_peak_cny",
                               "ratio_to_ref_high", "ratio_to_ref_low", "price_per_kw",
                               "basis_price_cny"))
#: Peer statistics: computed within one currency, so comparable whatever the currency.
PEER_COLUMNS = frozenset(("peer_median", "ratio_to_peer_median", "robust_z", "peer_count",
                          "mainstream_peer_median", "ratio_to_mainstream_median",
                          "peer_median_90d", "tender_mainstream_median"))


def compares_with_reference(columns: Iterable[str]) -> bool:
    """Whether a rule reading ``columns`` compares prices with the yuan reference book."""
    used = set(columns)
    return bool(used & REFERENCE_COLUMNS) and not used & PEER_COLUMNS


def foreign_currencies(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Lines of ``items`` in another currency than yuan: code -> count ({} when none, or when
    the view has no currency column)."""
    import duckdb

    try:
        rows = con.execute("SELECT currency, count(*) FROM items WHERE currency <> 'CNY' "
                           "GROUP BY currency ORDER BY currency").fetchall()
    except duckdb.Error:
        return {}
    return {str(c): int(n) for c, n in rows}
