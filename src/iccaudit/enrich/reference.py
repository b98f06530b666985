"""The reference book: prices, specs, brands and parameters rule authors edit as YAML.

Each file of ``rules/reference/`` is validated by a pydantic model with ``extra="forbid"``;
every figure carries a source tag (``S`` sourced, ``D`` derived, ``E`` estimate) and a note.
A bad file gives one :class:`ReferenceError` line with ``file:line``, found by walking the
YAML node tree alongside the pydantic error location.

:func:`load_reference_tables` turns a :class:`Reference` into the ``ref_*`` tables of the
sandbox; the views read only those tables, never the YAML.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from iccaudit.core import yamlsafe
from iccaudit.enrich.prices import PRICE_POINTS_DDL, PricesFile, price_point_frame, series_problem
from iccaudit.enrich.refbase import PRICE_DATE_RE as _PRICE_DATE_RE
from iccaudit.enrich.refbase import Loc, ReferenceError, Source, _Strict

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

# Aliases end up inside a generated regular expression (escaped); keep them to plain text.
_ALIAS_RE = re.compile(r"^[^\x00-\x1f\\]{1,40}$")


class PriceRange(_Strict):
    """A reference price range in CNY with its provenance.

    Parameters
    ----------
    low, high : float
        Market range, ``low <= high``.
    peak : float, optional
        Highest legitimate market price seen (e.g. H100 servers in 2024-01).
    cards : int, optional
        Accelerator cards in the priced configuration (servers only, usually 8).
    date : str, optional
        When the price held: ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``.
    source : {"S", "D", "E"}
        Sourced, derived or estimate.
    note : str
        Where the figure comes from.
    """

    low: float = Field(gt=0)
    high: float = Field(gt=0)
    peak: float | None = Field(None, gt=0)
    cards: int | None = Field(None, ge=1, le=64)
    date: str | None = None
    source: Source
    note: str = Field(min_length=1)

    @field_validator("date")
    @classmethod
    def _date_shape(cls, value: str | None) -> str | None:
        if value is not None and not _PRICE_DATE_RE.match(value):
            raise ValueError("date must be YYYY, YYYY-MM or YYYY-MM-DD")
        return value


class Accelerator(_Strict):
    """One accelerator model: how to recognise it, its specs and its reference prices."""

    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
    aliases: list[str] = Field(min_length=1)
    vendor: str
    is_domestic: bool
    export_controlled: bool
    controlled_from: dt.date | None = None
    tdp_w: float | None = Field(None, gt=0)
    fp16_dense_tflops: float | None = Field(None, gt=0)
    specs_source: Source | None = None
    card: PriceRange | None = None
    server: PriceRange | None = None
    note: str = Field(min_length=1)

    @field_validator("aliases")
    @classmethod
    def _plain_aliases(cls, value: list[str]) -> list[str]:
        for alias in value:
            if not _ALIAS_RE.match(alias) or not alias.strip():
                raise ValueError(f"alias {alias!r} must be 1-40 plain characters")
        return value

    @model_validator(mode="after")
    def _control_date(self) -> Accelerator:
        if self.export_controlled and self.controlled_from is None:
            raise ValueError("export_controlled models need controlled_from (a date)")
        if (self.tdp_w is not None or self.fp16_dense_tflops is not None) and not self.specs_source:
            raise ValueError("give specs_source (S, D or E) for tdp_w / fp16_dense_tflops")
        return self


class AcceleratorsFile(_Strict):
    accelerators: list[Accelerator] = Field(min_length=1)


class Discount(_Strict):
    low: float = Field(ge=0, lt=1)
    high: float = Field(ge=0, lt=1)
    source: Source
    note: str = Field(min_length=1)


class AssemblyModel(_Strict):
    model: str
    head: PriceRange | None = None
    module: PriceRange | None = None


class AssemblyFile(_Strict):
    discount: Discount
    models: list[AssemblyModel] = Field(default_factory=list)


class CoolingRange(_Strict):
    type: Literal["cold_plate", "immersion", "other"]
    low: float = Field(gt=0)
    high: float = Field(gt=0)
    source: Source
    note: str = Field(min_length=1)


class CoolingFile(_Strict):
    per_kw: list[CoolingRange] = Field(min_length=1)
    retrofit_per_server: PriceRange


class NetworkItem(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    unit: str
    low: float = Field(gt=0)
    high: float = Field(gt=0)
    source: Source
    note: str = Field(min_length=1)


class NetworkFile(_Strict):
    items: list[NetworkItem] = Field(default_factory=list)


class Brand(_Strict):
    name: str
    aliases: list[str] = Field(min_length=1)
    source: Source
    note: str = Field(min_length=1)

    @field_validator("aliases")
    @classmethod
    def _plain(cls, value: list[str]) -> list[str]:
        for alias in value:
            if not _ALIAS_RE.match(alias) or not alias.strip():
                raise ValueError(f"alias {alias!r} must be 1-40 plain characters")
        return value


class BrandsFile(_Strict):
    brands: list[Brand] = Field(min_length=1)


#: The parameters the enrich SQL reads (``$key`` in ``enrich/sql/*.sql``), each with its kind
#: of number: :func:`load_reference` refuses a ``params.yaml`` without every one.
ENRICH_PARAMS: dict[str, type[int | float]] = {
    "peer_window_days": int, "default_cards_per_unit": int, "reference_cards_per_server": int,
    "serial_min_chars": int, "robust_z_min_peers": int,
    "robust_z_mad_scale": float, "robust_z_meanad_scale": float,
    "server_kw_per_accelerator_kw": float, "cooling_capacity_factor": float,
    "vat_rate_equipment": float,
}


class Param(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    value: float | str
    source: Source
    note: str = Field(min_length=1)

    @model_validator(mode="after")
    def _enrich_kind(self) -> Param:
        kind = ENRICH_PARAMS.get(self.key)
        if kind is not None and (isinstance(self.value, str)
                                 or (kind is int and not float(self.value).is_integer())):
            raise ValueError(f"{self.key} must be a {'whole ' if kind is int else ''}number")
        return self


class ParamsFile(_Strict):
    params: list[Param] = Field(default_factory=list)


#: file name -> model; the reference folder holds exactly these files (params optional).
FILES: dict[str, type[_Strict]] = {
    "accelerators.yaml": AcceleratorsFile,
    "assembly.yaml": AssemblyFile,
    "cooling.yaml": CoolingFile,
    "network.yaml": NetworkFile,
    "brands.yaml": BrandsFile,
    "params.yaml": ParamsFile,
    "prices.yaml": PricesFile,
}
_REQUIRED = ("accelerators.yaml", "assembly.yaml", "cooling.yaml", "brands.yaml")


class Reference(_Strict):
    """The whole reference book, one attribute per file of ``rules/reference/``.

    Attributes
    ----------
    accelerators, assembly, cooling, network, brands, params, prices
        The validated content of the file of the same name (``prices``: the dated series,
        :mod:`iccaudit.enrich.prices`).
    """

    accelerators: AcceleratorsFile
    assembly: AssemblyFile
    cooling: CoolingFile
    network: NetworkFile = NetworkFile()
    brands: BrandsFile
    params: ParamsFile = ParamsFile()
    prices: PricesFile = PricesFile()

    def param(self, key: str) -> float | str | None:
        """Value of a parameter, or None."""
        return next((p.value for p in self.params.params if p.key == key), None)

    def enrich_params(self) -> dict[str, int | float]:
        """The :data:`ENRICH_PARAMS`, each of its kind; ReferenceError naming the missing."""
        given = {p.key: p.value for p in self.params.params}
        missing = [key for key in ENRICH_PARAMS if key not in given]
        if missing:
            raise ReferenceError(f"params.yaml: missing parameter(s) {', '.join(missing)} "
                                 "(the enrich views read them)")
        # Param's validator has checked each is a number of its kind
        return {key: kind(given[key]) for key, kind in ENRICH_PARAMS.items()}


def alias_key(alias: str) -> str:
    """An alias as compared: lower case, no spaces, hyphens or underscores."""
    return re.sub(r"[\s\-_]+", "", alias.strip().lower())


def _duplicates(data: _Strict) -> tuple[Loc, str] | None:
    """First id or alias used twice across entries, as (location, message); else None."""
    if isinstance(data, AcceleratorsFile):
        section, key = "accelerators", alias_key
        entries = [(acc.id, acc.aliases) for acc in data.accelerators]
        ids: dict[str, int] = {}
        for i, acc in enumerate(data.accelerators):
            if acc.id in ids:
                return (section, i, "id"), f"duplicate accelerator id '{acc.id}'"
            ids[acc.id] = i
    elif isinstance(data, BrandsFile):
        section = "brands"
        entries = [(brand.name, brand.aliases) for brand in data.brands]

        def key(alias: str) -> str:
            return alias.strip().lower()
    elif isinstance(data, PricesFile):
        return series_problem(data)
    else:
        return None
    seen: dict[str, str] = {}
    for i, (name, aliases) in enumerate(entries):
        for j, alias in enumerate(aliases):
            k = key(alias)
            if k in seen and seen[k] != name:
                return (section, i, "aliases", j), (
                    f"alias {alias!r} of {name} is also an alias of {seen[k]}")
            seen[k] = name
    return None


def _line_index(node: yaml.Node, path: Loc = (),
                out: dict[Loc, int] | None = None) -> dict[Loc, int]:
    """Map every (key/index) path of a YAML document to its 1-based line."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[path + (key,)] = key_node.start_mark.line + 1
            _line_index(value_node, path + (key,), out)
            out[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, path + (i,), out)
    return out


def _line_of(index: dict[Loc, int], loc: Loc) -> int:
    loc = tuple(loc)
    while loc and loc not in index:
        loc = loc[:-1]
    return index.get(loc, 1)


def _load_file(path: Path, model: type[_Strict]) -> _Strict:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReferenceError(f"{path}: cannot read: {exc}") from None
    try:
        node, data = yamlsafe.load_with_node(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ReferenceError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    if not isinstance(data, dict):
        raise ReferenceError(f"{path}:1: expected a mapping at the top of the file")
    index = _line_index(node) if node is not None else {}
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        # an unknown field is the most common and most actionable mistake: report it first
        err = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "(file)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown field '{loc[-1]}'"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ReferenceError(f"{path}:{_line_of(index, loc)}: {field}: {msg}{more}") from None
    dup = _duplicates(parsed)
    if dup is not None:
        loc, msg = dup
        field = ".".join(str(p) for p in loc)
        raise ReferenceError(f"{path}:{_line_of(index, loc)}: {field}: {msg}")
    return parsed


def load_reference(reference_dir: Path) -> Reference:
    """Read and validate every file of the reference folder; raise ReferenceError (one line)."""
    reference_dir = Path(reference_dir)
    if not reference_dir.is_dir():
        raise ReferenceError(f"{reference_dir}: reference folder not found")
    parts: dict[str, _Strict] = {}
    for path in sorted(reference_dir.glob("*.y*ml")):
        if path.name not in FILES:
            raise ReferenceError(
                f"{path}:1: unknown reference file (expected one of {', '.join(FILES)})"
            )
        parts[path.stem] = _load_file(path, FILES[path.name])
    missing = [name for name in _REQUIRED if name.removesuffix(".yaml") not in parts]
    if missing:
        raise ReferenceError(f"{reference_dir}: missing reference file(s): {', '.join(missing)}")
    ref = Reference(**parts)
    try:
        ref.enrich_params()
    except ReferenceError as exc:
        raise ReferenceError(f"{reference_dir}/{exc}") from None
    known = {a.id for a in ref.accelerators.accelerators}
    for i, model in enumerate(ref.assembly.models):
        if model.model not in known:
            raise ReferenceError(
                f"{reference_dir / 'assembly.yaml'}: models.{i}.model: unknown accelerator "
                f"'{model.model}' (known: {', '.join(sorted(known))})"
            )
    for i, series in enumerate(ref.prices.series):
        if series.model not in known:
            raise ReferenceError(
                f"{reference_dir / 'prices.yaml'}: series.{i}.model: unknown accelerator "
                f"'{series.model}' (known: {', '.join(sorted(known))})"
            )
    return ref


def _ranges(ref: Reference) -> list[tuple[str, str, PriceRange | None]]:
    """Every undated price range of the book: (model, basis, range)."""
    assembly = {m.model: m for m in ref.assembly.models}
    out: list[tuple[str, str, PriceRange | None]] = []
    for a in ref.accelerators.accelerators:
        asm = assembly.get(a.id)
        out += [(a.id, "server", a.server), (a.id, "card", a.card),
                (a.id, "head", asm.head if asm else None),
                (a.id, "module", asm.module if asm else None)]
    return out


def reference_frames(ref: Reference) -> dict[str, pd.DataFrame]:
    """The reference book as flat tables (name -> frame), ready for DuckDB."""
    import pandas as pd  # here: checking a rule pack (rules validate) does not load pandas

    server_cards = ref.enrich_params()["reference_cards_per_server"]
    acc_rows, alias_rows = [], []
    for a in ref.accelerators.accelerators:
        # the prices go to ref_price_points (dated); this table holds the specs
        acc_rows.append(
            {
                "model_id": a.id,
                "vendor": a.vendor,
                "is_domestic": a.is_domestic,
                "export_controlled": a.export_controlled,
                "controlled_from": a.controlled_from,
                "tdp_w": a.tdp_w,
                "fp16_dense_tflops": a.fp16_dense_tflops,
                "note": a.note,
            }
        )
        for alias in a.aliases:
            alias_rows.append({"model_id": a.id, "alias": alias, "alias_key": alias_key(alias)})
    cooling = [
        {"cooling_type": c.type, "low_per_kw": c.low, "high_per_kw": c.high,
         "source": c.source, "note": c.note}
        for c in ref.cooling.per_kw
    ]
    rf = ref.cooling.retrofit_per_server
    brands = [
        {"brand": b.name, "alias": alias.strip().lower(), "tier": "mainstream",
         "source": b.source, "note": b.note}
        for b in ref.brands.brands
        for alias in b.aliases
    ]
    params = [
        {"key": "assembly_discount_low", "num_value": ref.assembly.discount.low, "text_value": None,
         "source": ref.assembly.discount.source, "note": ref.assembly.discount.note},
        {"key": "assembly_discount_high", "num_value": ref.assembly.discount.high,
         "text_value": None, "source": ref.assembly.discount.source,
         "note": ref.assembly.discount.note},
        {"key": "retrofit_per_server_low", "num_value": rf.low, "text_value": None,
         "source": rf.source, "note": rf.note},
        {"key": "retrofit_per_server_high", "num_value": rf.high, "text_value": None,
         "source": rf.source, "note": rf.note},
    ]
    for p in ref.params.params:
        num = float(p.value) if isinstance(p.value, int | float) else None
        params.append({"key": p.key, "num_value": num,
                       "text_value": None if num is not None else str(p.value),
                       "source": p.source, "note": p.note})
    network = [n.model_dump() for n in ref.network.items]
    return {
        "ref_accelerators": pd.DataFrame(acc_rows),
        "ref_accel_aliases": pd.DataFrame(alias_rows),
        "ref_cooling": pd.DataFrame(cooling),
        "ref_brands": pd.DataFrame(brands),
        "ref_params": pd.DataFrame(params),
        "ref_network": pd.DataFrame(network, columns=list(NetworkItem.model_fields)),
        "ref_price_points": price_point_frame(ref.prices, _ranges(ref), int(server_cards)),
    }


#: DuckDB types of the reference tables, so they are exact whatever pandas infers.
REF_DDL: dict[str, dict[str, str]] = {
    "ref_accelerators": {
        "model_id": "VARCHAR", "vendor": "VARCHAR", "is_domestic": "BOOLEAN",
        "export_controlled": "BOOLEAN", "controlled_from": "DATE", "tdp_w": "DOUBLE",
        "fp16_dense_tflops": "DOUBLE", "note": "VARCHAR",
    },
    "ref_accel_aliases": {"model_id": "VARCHAR", "alias": "VARCHAR", "alias_key": "VARCHAR"},
    "ref_cooling": {"cooling_type": "VARCHAR", "low_per_kw": "DOUBLE", "high_per_kw": "DOUBLE",
                    "source": "VARCHAR", "note": "VARCHAR"},
    "ref_brands": {"brand": "VARCHAR", "alias": "VARCHAR", "tier": "VARCHAR",
                   "source": "VARCHAR", "note": "VARCHAR"},
    "ref_params": {"key": "VARCHAR", "num_value": "DOUBLE", "text_value": "VARCHAR",
                   "source": "VARCHAR", "note": "VARCHAR"},
    "ref_network": {"id": "VARCHAR", "unit": "VARCHAR", "low": "DOUBLE", "high": "DOUBLE",
                    "source": "VARCHAR", "note": "VARCHAR"},
    "ref_price_points": PRICE_POINTS_DDL,
}


def load_reference_tables(con: duckdb.DuckDBPyConnection, ref: Reference) -> None:
    """Create and fill the ``ref_*`` tables in a DuckDB connection."""
    for name, frame in reference_frames(ref).items():
        cols = REF_DDL[name]
        con.execute(
            f"CREATE TABLE {name} (" + ", ".join(f'"{c}" {t}' for c, t in cols.items()) + ")"
        )
        if len(frame):
            con.register("_ref_incoming", frame)
            try:
                select = ", ".join(f'CAST("{c}" AS {t})' for c, t in cols.items())
                con.execute(f"INSERT INTO {name} SELECT {select} FROM _ref_incoming")
            finally:
                con.unregister("_ref_incoming")
