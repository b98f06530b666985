"""OCDS (Open Contracting Data Standard): release packages, record packages (the compiled
release, else the releases embedded), single releases and JSON lines of any of them.

The priced items are those of ``awards[].items`` and ``contracts[].items``, one table per
ocid (the ocid is the tender id; the tender's title and description are its title text).
Each row keeps where it was published (``ocid / award ID / item ID``). Currency is kept as
published, never taken for yuan.

One item is often published many times: in each release that repeats an award, in the
record's releases and its compiled release, in the contract that repeats its award's items.
As OCDS merges releases (an award or contract of the same id in a later release replaces the
earlier one), the earlier versions are read as rows but marked repeats (non-items), and so
is an item published again with the same id, description, quantity, price and currency
(:func:`publication_key`: the batch reader marks repeats across files too).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from iccaudit.read.base import FileReadError, FileSkipped, RawTable, ReadResult
from iccaudit.read.cells import objects_to_columns

#: The columns of an OCDS table (names the header logic maps: ocid -> tender_id …);
#: item attributes (``items[].attributes[]``: name, value) come after them under their names.
COLUMNS = ["tender_id", "project_name", "line_no", "item_name", "quantity", "unit",
           "unit_price", "currency", "supplier", "buyer", "date", "classification"]
#: Keys of a release or record beside its ocid.
_OCDS_KEYS = ("tag", "initiationType", "awards", "contracts", "releases", "compiledRelease",
              "tender", "planning")
#: The non-item kind of a repeated publication of an item.
REPEAT = "repeat"


def looks_like_ocds(doc: object) -> bool:
    """A release or record package, a release, or a record (by the keys OCDS requires)."""
    if not isinstance(doc, dict):
        return False
    # a release or record: an ocid and what only OCDS has beside it (a flat table of line
    # items may well have an "ocid" column)
    if isinstance(doc.get("ocid"), str) and any(k in doc for k in _OCDS_KEYS):
        return True
    for key in ("releases", "records"):
        items = doc.get(key)
        if isinstance(items, list) and items and isinstance(items[0], dict) and (
                "ocid" in items[0]):
            return True
    return False


def _fail(where: str, what: str) -> FileReadError:
    return FileReadError(f"cannot read: not valid OCDS: {where}: {what}")


def releases_of(doc: Any, where: str) -> list[tuple[dict[str, Any], str]]:
    """The releases of one document (a package, a record, a release), each with its path."""
    if not isinstance(doc, dict):
        raise _fail(where, "expected an object")
    if isinstance(doc.get("records"), list):
        out = []
        for i, record in enumerate(doc["records"]):
            out += releases_of(record, f"{where}records[{i}].")
        return out
    if isinstance(doc.get("releases"), list) and "ocid" in doc and "compiledRelease" in doc:
        return [(_release(doc["compiledRelease"], f"{where}compiledRelease"),
                 f"{where}compiledRelease")]
    if isinstance(doc.get("releases"), list):
        embedded = [(r, f"{where}releases[{i}]") for i, r in enumerate(doc["releases"])
                    if isinstance(r, dict) and ("awards" in r or "contracts" in r
                                                or "ocid" in r)]
        return [(_release(r, w), w) for r, w in embedded]
    return [(_release(doc, where.rstrip(".") or "release"), where.rstrip(".") or "release")]


def _release(r: Any, where: str) -> dict[str, Any]:
    if not isinstance(r, dict):
        raise _fail(where, "a release must be an object")
    if not isinstance(r.get("ocid"), str) or not r["ocid"].strip():
        raise _fail(where, "a release needs an ocid")
    for key in ("awards", "contracts", "parties"):
        if key in r and not isinstance(r[key], list):
            raise _fail(f"{where}.{key}", "must be a list")
    return r


def _text(v: object) -> str | None:
    if v is None or isinstance(v, dict | list):
        return None if v is None else json.dumps(v, ensure_ascii=False)
    return str(v)


def publication_key(row: dict[str, str | None]) -> tuple[str | None, ...]:
    """What makes two publications of an item the same item."""
    return (row["tender_id"], row["line_no"], row["item_name"], row["quantity"],
            row["unit_price"], row["currency"])


def _rows(releases: list[tuple[dict[str, Any], str]]) -> list[tuple[dict[str, Any], str, bool]]:
    """Every published item (row, location, superseded?) in file order."""
    # OCDS merging: the latest release's version of an award/contract (by id) wins
    latest: dict[tuple[str, str, str], tuple[str, int]] = {}
    for n, (r, _) in enumerate(releases):
        for kind in ("awards", "contracts"):
            for block in r.get(kind) or []:
                if isinstance(block, dict) and block.get("id") is not None:
                    key = (r["ocid"], kind, str(block["id"]))
                    stamp = (str(r.get("date") or ""), n)
                    if key not in latest or stamp >= latest[key]:
                        latest[key] = stamp
    out = []
    for n, (r, where) in enumerate(releases):
        ocid = r["ocid"]
        tender = _obj(r.get("tender"))
        parties = {str(p.get("id")): p.get("name") for p in r.get("parties") or []
                   if isinstance(p, dict)}
        buyer = _text(_obj(r.get("buyer")).get("name")) or next(
            (str(p.get("name")) for p in r.get("parties") or []
             if isinstance(p, dict) and "buyer" in (p.get("roles") or []) and p.get("name")),
            None)
        award_suppliers: dict[str, str | None] = {}
        for a in r.get("awards") or []:
            if isinstance(a, dict):
                award_suppliers[str(a.get("id"))] = _suppliers(a, parties)
        for kind, label in (("awards", "award"), ("contracts", "contract")):
            for b, block in enumerate(r.get(kind) or []):
                if not isinstance(block, dict):
                    raise _fail(f"{where}.{kind}[{b}]", "must be an object")
                items = block.get("items") or []
                if not isinstance(items, list):
                    raise _fail(f"{where}.{kind}[{b}].items", "must be a list")
                bid = str(block.get("id", b))
                stamp = (str(r.get("date") or ""), n)
                old = latest.get((ocid, kind, bid), stamp) != stamp
                supplier = (award_suppliers.get(bid) if kind == "awards"
                            else award_suppliers.get(str(block.get("awardID")))
                            or _suppliers(block, parties))
                date = block.get("date") or block.get("dateSigned") or r.get("date")
                title = block.get("title") or tender.get("title")
                for i, item in enumerate(items):
                    if not isinstance(item, dict):
                        raise _fail(f"{where}.{kind}[{b}].items[{i}]", "must be an object")
                    iid = _text(item.get("id")) or str(i + 1)
                    row = _item_row(item, ocid, iid, title, supplier, date)
                    row["buyer"] = buyer
                    out.append((row, f"{ocid} / {label} {bid} / item {iid}", old))
    return out


def _suppliers(block: dict[str, Any], parties: dict[str, Any]) -> str | None:
    names = []
    for s in block.get("suppliers") or []:
        if isinstance(s, dict):
            name = s.get("name") or parties.get(str(s.get("id")))
            if name:
                names.append(str(name))
    return "; ".join(names) or None


def _obj(v: object) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _item_row(item: dict[str, Any], ocid: str, iid: str, title: object, supplier: str | None,
              date: object) -> dict[str, str | None]:
    unit = _obj(item.get("unit"))
    value = _obj(unit.get("value"))
    cls = _obj(item.get("classification"))
    row: dict[str, str | None] = {
        "tender_id": ocid, "project_name": _text(title), "line_no": iid,
        "item_name": _text(item.get("description")) or _text(cls.get("description")),
        "quantity": _text(item.get("quantity")), "unit": _text(unit.get("name")),
        "unit_price": _text(value.get("amount")), "currency": _text(value.get("currency")),
        "supplier": supplier, "date": str(date)[:10] if date else None,
        "classification": " ".join(str(cls[k]) for k in ("scheme", "id") if cls.get(k))
        or None,
    }
    for a in item.get("attributes") or []:
        if isinstance(a, dict) and a.get("name") and str(a["name"]) not in row:
            row[str(a["name"])] = _text(a.get("value"))
    return row


def ocds_tables(docs: list[tuple[Any, str]]) -> list[RawTable]:
    """The items of OCDS documents (each with its path in the file) as one table per ocid."""
    releases = []
    for doc, where in docs:
        releases += releases_of(doc, where)
    rows = _rows(releases)
    titles: dict[str, str] = {}
    for r, _ in releases:
        tender = _obj(r.get("tender"))
        text = "\n".join(str(tender[k]) for k in ("title", "description")
                         if isinstance(tender.get(k), str))
        if text and r["ocid"] not in titles:
            titles[r["ocid"]] = text
    seen: set[tuple[str | None, ...]] = set()
    by_ocid: dict[str, list[int]] = {}
    repeat = np.zeros(len(rows), dtype=bool)
    for k, (row, _, old) in enumerate(rows):
        key = publication_key(row)
        repeat[k] = old or key in seen
        if not old:
            seen.add(key)
        by_ocid.setdefault(str(row["tender_id"]), []).append(k)
    out = []
    position = np.arange(1, len(rows) + 1, dtype="int64")
    for ocid, ks in by_ocid.items():
        names = list(COLUMNS)
        for k in ks:
            names += [n for n in rows[k][0] if n not in names]
        grid = np.array([[rows[k][0].get(n) for n in names] for k in ks], dtype=object)
        kinds = np.where(repeat[ks], REPEAT, None).astype(object)
        out.append(RawTable(ocid, objects_to_columns(grid), position[ks], header=names,
                            title=titles.get(ocid, ""),
                            locations=np.array([rows[k][1] for k in ks], dtype=object),
                            kinds=kinds if repeat[ks].any() else None,
                            keys=[publication_key(rows[k][0]) for k in ks]))
    return out


def read_ocds(docs: list[tuple[Any, str]], fmt: str, encoding: str | None) -> ReadResult:
    """OCDS documents read from one file as a :class:`ReadResult`."""
    tables = ocds_tables(docs)
    if not tables:
        raise FileSkipped("OCDS without awarded items (a planning, tender or award release: "
                          "only awards[].items and contracts[].items carry awarded prices)")
    return ReadResult(fmt, encoding, tables)
