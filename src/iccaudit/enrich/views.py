"""The SQL views rules and models read: the files of ``enrich/sql/`` in the order they build.

Each table or view is one file (``sql/<name>.sql``, its comments say what it holds and why it
is built the way it is); repeated sub-expressions are macros (``sql/macros/``). This module
only gives them their values (see :mod:`iccaudit.enrich.sqlfiles`): the parameters, from the
reference book's ``params.yaml`` (:data:`iccaudit.enrich.reference.ENRICH_PARAMS`) and the
recognition lexicon (``rules/lexicon/``, :mod:`iccaudit.enrich.lexicon`; the accelerator
aliases of the reference book), and the slots, from the schema's columns. Two steps are
Python, run by the sandbox (:data:`PYTHON_STEPS`): the texts' normalisation and the learned
fallback for texts the lexicon does not recognise.

All steps are set-at-a-time. Recognition (regular expressions, reference prices, brand,
peer key) runs once per distinct text of the six text columns (``_text_class``); the
per-line figures, peer statistics and windows run on narrow rows (``_lines``: numbers and
keys, no raw JSON, no texts); tenders and peers come in by GROUP BY + join. The one wide
copy of the lines is ``items``: the caller's rows with the same figures, computed by the same
SQL, and the peer statistics and windows (by row position). A million lines cost about three
seconds on two cores.

Internal steps start with ``_`` and are dropped at the end. The public views (described in
:mod:`iccaudit.enrich.dictionary`) ``items``, ``tender_assemblies``, ``serial_reuse``,
``duplicate_lines`` and ``tender_compute`` are materialised as tables (each rule and model
reads them; a view would be computed once per reader); ``line_items`` is a view of
``items``' first columns.

Choices worth knowing (also in docs/dictionary.md):

- ``capacity_kw`` is read as the capacity of **one unit** (a spec attribute, like 规格参数),
  so ``price_per_kw = unit_price / capacity_kw``; when the line is a lump sum (项/批) or its
  text says the capacity is a total (总制冷量, 合计 …) it is the capacity of the **line** and
  ``price_per_kw = quantity * unit_price / capacity_kw`` (``capacity_scope`` says which).
- Peer statistics include the line itself (``peer_count`` counts it): a lone line has
  ``peer_count = 1`` and ``robust_z`` NULL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from iccaudit.core.paths import lexicon_dir
from iccaudit.enrich import vocab
from iccaudit.enrich.lexicon import Lexicon
from iccaudit.enrich.lexicon_check import load_lexicon
from iccaudit.enrich.reference import Reference
from iccaudit.enrich.sqlfiles import SqlValue, literal, render

#: The categories of accelerator lines (tender_compute sums their compute).
ACCEL_CATEGORIES = ("gpu_server", "gpu_card", "gpu_module", "domestic_accelerator")

#: The internal steps, in the order they are built, then the public views.
STEPS = ("_li", "_text_keys", "_items_text", "_items_accel", "_items_class", "_text_class",
         "_text_capacity", "_td", "_tender_load", "_lines", "_peer_stats", "_peer_near",
         "_tender_mainstream")
PUBLIC = ("items", "line_items", "tender_assemblies", "serial_reuse", "duplicate_lines",
          "tender_compute")

#: Python steps of the sandbox: run right after the statement that makes the named step.
PYTHON_STEPS = {"_text_keys": "normalise", "_items_class": "fallback"}

#: Columns the figures' inner SELECT (``sql/macros/figures.sql``) makes, and its outer one: a
#: carried column of the same name is the same value.
_INNER = frozenset((
    "rid", "tid", "tender_id", "unit_price_cny", "category", "peer_key", "brand_tier",
    "ref_basis", "is_lump_sum", "unit_norm", "ref_low_cny", "ref_high_cny", "line_total_cny",
    "total_diff_cny", "card_count", "capacity_scope", "price_per_kw", "retrofit_servers",
    "purchase_date", "tender_total_cny", "ref_peak_cny", "ref_source", "ref_price_date",
    "ref_date_basis", "ref_point", "capacity_from_tender_kw", "capacity_source", "vat_factor",
    "tax_basis"))
_OUTER = frozenset((
    "rid", "tid", "tender_id", "category", "peer_key", "brand_tier", "line_total_cny",
    "total_diff_cny", "card_count", "capacity_scope", "price_per_kw", "retrofit_servers",
    "purchase_date", "basis_price_cny", "ratio_to_ref_high", "ratio_to_ref_low",
    "line_value_share", "tender_total_cny", "peer_price_cny", "peer_basis", "ref_price_date",
    "ref_date_basis", "ref_point", "ref_as_of", "capacity_from_tender_kw", "capacity_source",
    "vat_factor", "tax_basis"))
#: What items takes of each text's recognition (_text_class), beside the caller's columns.
_RECOGNISED = ("text", "accel_model", "accel_vendor", "is_domestic", "export_controlled",
               "export_control_date", "fp16_dense_tflops", "tdp_w", "category", "ref_basis",
               "cards_per_unit", "condition_class", "condition_conflict", "cooling_type",
               "shell_wording", "spec_says_assembled", "is_lump_sum", "brand_canonical",
               "brand_tier", "ref_low_cny", "ref_high_cny", "ref_peak_cny", "ref_source",
               "peer_key", "recognised_by", "model_confidence")


def default_lexicon() -> Lexicon:
    """The lexicon of the bundled rule pack (``$ICCAUDIT_RULES`` honoured)."""
    return load_lexicon(lexicon_dir())


def _vocabulary(lexicon: Lexicon, aliases: Sequence[str]) -> dict[str, SqlValue]:
    """The ``$name`` values of the recognition vocabulary: each concept of the lexicon (see
    :meth:`Lexicon.sql_params`), and the patterns made from its words and the accelerator
    ``aliases``."""
    values: dict[str, SqlValue] = dict(lexicon.sql_params())
    alias_list = list(aliases)
    vendors, nouns = lexicon.words("card_vendor"), lexicon.words("card_noun")
    values.update(
        accel_alias=vocab.accel_regex(alias_list, vendors),
        cards_times=vocab.cards_times_regex(alias_list, vendors, nouns),
        times_cards=vocab.times_cards_regex(alias_list, lexicon.words("card_noun_lead")),
        max_cards_per_unit=vocab.MAX_CARDS_PER_UNIT,
        accel_categories=ACCEL_CATEGORIES,
    )
    return values


#: Unit conversions of the capacities (rules/lexicon/capacity.yaml): constants, not reference
#: data.
_UNIT_FACTORS: dict[str, SqlValue] = {
    "tib_in_tb": 2**40 / 10**12, "pb_in_tb": 1000.0, "pib_in_tb": 2**50 / 10**12,
    "kw_in_mw": 1000.0, "load_lines_listed": 10,
}
#: The date an undated line is priced at when the run states none: the last point of every
#: series (ref_price_points' last segment runs to 9999-12-31, exclusive).
_LATEST_POINT = dt.date(9999, 12, 30)


def parameters(ref: Reference, price_date: dt.date | None = None,
               lexicon: Lexicon | None = None) -> dict[str, SqlValue]:
    """Every ``$name`` value of the SQL files: the reference book's enrich parameters, the
    vocabulary of the lexicon (no name is both), and the run's price date for undated lines
    (``default_price_date``; the last point of each series when ``price_date`` is None)."""
    aliases = [a for acc in ref.accelerators.accelerators for a in acc.aliases]
    words = _vocabulary(lexicon or default_lexicon(), aliases)
    reference = ref.enrich_params()
    both = words.keys() & reference.keys()
    if both:
        raise ValueError(f"named both in params.yaml and the vocabulary: {sorted(both)}")
    run: dict[str, SqlValue] = {"default_price_date": price_date or _LATEST_POINT,
                                "price_date_given": price_date is not None}
    return {**words, **_UNIT_FACTORS, **reference, **run}


def _carry(columns: Sequence[tuple[str, str]], made: frozenset[str], alias: str | None) -> str:
    """The carried columns a figures SELECT does not make, each followed by a comma."""
    return "".join(f'{alias or table}."{name}", ' for table, name in columns
                   if name not in made)


def view_statements(ref: Reference, source: str, line_item_columns: Sequence[str],
                    price_date: dt.date | None = None,
                    lexicon: Lexicon | None = None, temp_steps: bool = True) -> list[str]:
    """The statements that build the sandbox's tables and views, in dependency order.

    ``source`` is a FROM item (a table name or a parenthesised SELECT) giving the run's line
    items with the ``line_item_columns`` already typed, and ``__row``, each row's position
    (distinct integers); it is read twice: once for the few columns enrich computes on, once
    for the final ``items`` table. ``price_date``: the date undated lines are priced at.
    ``temp_steps``: the internal steps' tables are temporary (all are dropped once items is
    built: in a sandbox kept in a database file a temp table is never compressed and
    written); an out-of-core sandbox keeps them in its file, where they spill compressed
    (10 M lines, one run each: the whole run 201 s so, 216 s with them as temp tables).
    """
    lexicon = lexicon or default_lexicon()
    params = parameters(ref, price_date, lexicon)
    carry = [("li", c) for c in line_item_columns] + [("c", c) for c in _RECOGNISED]
    slots: dict[str, dict[str, str]] = {
        "_li": {"source": source},
        "_items_class": {"cards_chinese": " ".join(
            f"WHEN contains(text, {literal(k)}) THEN {literal(v)}"
            for k, v in lexicon.numbers("cards_chinese"))},
        "_lines": {"carry_inner": "", "carry_outer": ""},
        "items": {"source": source,
                  "line_columns": ",\n    ".join(f'l."{c}"' for c in line_item_columns),
                  "carry_inner": _carry(carry, _INNER, None),
                  "carry_outer": _carry(carry, _OUTER, "f")},
        "line_items": {"line_columns": ", ".join(f'"{c}"' for c in line_item_columns)},
    }
    steps = [render(name, params, slots.get(name)) for name in STEPS]
    if temp_steps:
        steps = [s.replace("CREATE TABLE _", "CREATE TEMP TABLE _", 1) for s in steps]
    public = {name: render(name, params, slots.get(name)) for name in PUBLIC}
    # The public views are tables: every rule and model reads them, so each is computed
    # once here rather than once per reader. The internal steps are dropped, and line_items
    # becomes a view of items' first columns: one wide copy of the lines, not two. What items
    # does not read goes before it is built (_lines too: items computes the figures itself;
    # its build sides and the new table at once are the memory peak of enrich), the rest
    # after. items' joins go in the order written (see sql/items.sql).
    early_drops = ["DROP VIEW _items_class", "DROP VIEW _items_accel", "DROP VIEW _items_text",
                   "DROP TABLE _text_model", "DROP TABLE _text_norm",
                   "DROP TABLE _li", "DROP TABLE _lines"]
    late_drops = [f"DROP TABLE {t}" for t in ("_tender_mainstream", "_peer_near", "_peer_stats",
                                              "_tender_load", "_td", "_text_capacity",
                                              "_text_class", "_text_keys")]
    return [*steps, *early_drops,
            "SET disabled_optimizers = 'join_order,build_side_probe_side'", public["items"],
            "RESET disabled_optimizers", *late_drops,
            *(public[name] for name in PUBLIC if name != "items")]
