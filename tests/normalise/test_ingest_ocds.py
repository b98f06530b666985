"""OCDS: release and record packages, single releases and JSON lines, read into line items
with their currency, each published item once; a real extract of Paraguay's DNCP data
(CC BY 4.0, tests/fixtures/ocds_paraguay/ATTRIBUTION.md) and hand-written packages."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from iccaudit.normalise import IngestError
from iccaudit.normalise.rates import load_rates
from iccaudit.run import ScoreOptions, run_score

PARAGUAY = Path(__file__).resolve().parents[1] / "fixtures" / "ocds_paraguay"
OCID = "ocds-03ad3f-274231"


def _item(iid, name, qty, amount, currency="USD"):
    unit = {"name": "Unidad"}
    if amount is not None:
        unit["value"] = {"amount": amount, "currency": currency}
    return {"id": iid, "description": name, "quantity": qty, "unit": unit}


def _release(rid, date, awards=(), contracts=(), ocid="ocds-x-1"):
    return {"ocid": ocid, "id": rid, "date": date, "tag": ["award"],
            "parties": [{"id": "P1", "name": "Proveedor SA", "roles": ["supplier"]}],
            "awards": list(awards), "contracts": list(contracts)}


def test_paraguay_record_package_is_read_with_its_currency(files, read):
    batch = read(PARAGUAY / "record-274231.json")
    items = batch.items
    assert len(items) == 4 and items["tender_id"].unique().tolist() == [OCID]
    assert items["currency"].unique().tolist() == ["PYG"]
    assert items["supplier"].unique().tolist() == ["RIEDER Y CIA. SACI"]
    assert items["buyer"].unique().tolist() == ["Compañía Paraguaya de Comunicaciones (COPACO)"]
    assert items["source_sheet"].str.fullmatch(
        OCID + r" / contract 274231-rieder-cia-saci-2 / item .+").all()
    assert batch.files.iloc[0]["format"] == "ocds"


def test_paraguay_folder_every_file_accounted_and_one_item_once(read):
    batch = read(PARAGUAY)
    status = dict(zip(batch.files["source_file"].map(lambda p: Path(p).name),
                      batch.files["status"], strict=True))
    assert status == {"record-274231.json": "ok", "release-274231-contract.json": "ok",
                      "release-274231-award.json": "skipped",
                      "release-274231-planning.json": "skipped",
                      "ATTRIBUTION.md": "skipped"}  # every file found is accounted
    # the contract release publishes the record's four items again: one item each
    assert batch.n_items == 4
    assert batch.non_items["kind"].tolist() == ["repeat"] * 4
    assert set(batch.non_items["source_file"].map(lambda p: Path(p).name)) == {
        "release-274231-contract.json"}


def test_superseded_award_and_contract_repeat_are_not_items_again(files, read):
    first = _release("r1", "2024-01-01", awards=[{"id": "A", "items": [
        _item("1", "Servidor", 2, 1000)]}])
    final = _release("r2", "2024-02-01", awards=[{"id": "A", "items": [
        _item("1", "Servidor", 2, 900), _item("2", "Switch", 1, None)]}],
        contracts=[{"id": "C", "awardID": "A", "items": [_item("1", "Servidor", 2, 900)]}])
    batch = read(files.json("pkg.json", {"uri": "u", "releases": [first, final]}))
    assert batch.items[["line_no", "unit_price_cny"]].values.tolist() == [["1", 900.0]]
    assert batch.rejects["reason"].tolist() == ["price_missing"]  # no unit price: a reject
    assert sorted(batch.non_items["kind"]) == ["repeat", "repeat"]  # old award, contract


def test_json_lines_of_releases(files, read):
    lines = [_release(f"r{i}", "2024-03-01", ocid=f"ocds-x-{i}",
                      awards=[{"id": "A", "items": [_item("1", "GPU", 1, 100 * i)]}])
             for i in (1, 2)]
    body = "\n".join(json.dumps(r) for r in lines) + "\n"
    batch = read(files.raw("rel.jsonl", body.encode()))
    assert batch.items["tender_id"].tolist() == ["ocds-x-1", "ocds-x-2"]
    assert batch.items["date"].astype(str).tolist() == ["2024-03-01", "2024-03-01"]


def test_ocds_that_fails_its_schema_is_one_line(files, read, table):
    bad = {"releases": [{"ocid": "ocds-x-1", "id": "r", "awards": {"id": "A"}}]}
    files.json("bad.json", bad)
    header, rows = table
    files.text("ok.csv", [header, *rows])
    batch = read(files.root)
    assert any("bad.json" in e and "not valid OCDS" in e and "awards" in e
               for e in batch.errors)
    assert batch.n_items == 2


def test_rate_table_converts_and_is_checked(tmp_path, files, read):
    rates = tmp_path / "rates.csv"
    rates.write_text("currency,date,cny_per_unit\nUSD,2024-01-01,7.1\nUSD,2024-06-01,7.2\n")
    early = _release("r1", "2023-12-01", ocid="ocds-x-1",
                     awards=[{"id": "A", "date": "2023-12-01", "items": [_item("1", "GPU", 1, 10)]}])
    later = _release("r2", "2024-07-01", ocid="ocds-x-2",
                     awards=[{"id": "A", "date": "2024-07-01", "items": [_item("1", "GPU", 1, 10)]}])
    path = files.json("pkg.json", {"releases": [early, later]})
    items = read(path, rates=rates).items.set_index("tender_id")
    # before the table's first day: not converted, the currency kept
    assert items.loc["ocds-x-1", ["currency", "unit_price_cny"]].tolist() == ["USD", 10.0]
    assert items.loc["ocds-x-2", "currency"] == "CNY"
    assert items.loc["ocds-x-2", "unit_price_cny"] == pytest.approx(72.0)
    rates.write_text("currency,date,cny_per_unit\nUSD,2024-13-01,7.1\n")
    with pytest.raises(IngestError, match=r"rates.csv: row 2, column date"):
        load_rates(rates)


def test_foreign_currency_is_never_yuan_in_a_run(tmp_path):
    db = tmp_path / "f.duckdb"
    result = run_score(ScoreOptions(paths=[PARAGUAY], db=db, seed=0))
    assert result.run["line_items"] == 4
    with duckdb.connect(str(db), read_only=True) as con:
        money = con.execute("SELECT sum(est_excess_cny) FROM findings").fetchone()[0]
        warned = con.execute("SELECT count(*) FROM rule_runs WHERE warning LIKE "
                             "'%4 line(s) in other currencies (PYG: 4) not evaluated%'"
                             ).fetchone()[0]
        skipped = con.execute("SELECT count(*) FROM files WHERE status = 'skipped'").fetchone()
    assert money is None  # no guaraní counted as yuan
    assert warned >= 3  # each reference-price rule says what it could not evaluate
    assert skipped == (3,)  # two releases without awarded items, the attribution


def test_findings_on_guarani_lines_speak_guarani(tmp_path):
    db = tmp_path / "f.duckdb"
    run_score(ScoreOptions(paths=[PARAGUAY / "record-274231.json"], db=db, seed=0))
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT message, message_en, evidence, est_excess_cny "
                           "FROM findings").fetchall()
    assert rows  # the two identical modem lines
    for message, message_en, evidence, money in rows:
        assert "¥" not in message + (message_en or "") and "PYG" in message
        assert json.loads(evidence)["currency"] == "PYG" and money is None


def test_a_flat_table_with_an_ocid_column_is_not_ocds(files, read):
    rows = [{"ocid": "ocds-x-1", "item_name": "GPU服务器", "quantity": 2, "unit_price": 1300000}]
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    batch = read(files.raw("flat.jsonl", body.encode()))
    assert batch.files.iloc[0]["format"] == "jsonl" and batch.n_items == 1
