"""``iccaudit doctor``: invariants found broken when they are, migration of older databases."""

from __future__ import annotations

import duckdb
import pytest
from click.testing import CliRunner

from iccaudit import store
from iccaudit.cli import cli
from iccaudit.core import schema
from iccaudit.store.doctor import run_doctor
from tests.test_store import _items, _run_frame


def _db(tmp_path):
    db = tmp_path / "f.duckdb"
    files = {
        "run_id": "r1", "source_file": "t.csv", "content_sha256": "0" * 64, "format": "csv",
        "rows_read": 4, "line_items": 3, "rejects": 0, "non_items": 1, "status": "ok",
    }
    import pandas as pd

    run = _run_frame("r1").assign(line_items=3)
    store.write_run(db, {"runs": run, "files": pd.DataFrame([files]),
                         "line_items": _items("r1", 3)})
    return db


def test_healthy_database_passes(tmp_path):
    notes, problems = run_doctor(_db(tmp_path))
    assert problems == []
    assert any("schema version" in n for n in notes)
    result = CliRunner().invoke(cli, ["doctor", "--db", str(tmp_path / "f.duckdb")])
    assert result.exit_code == 0, result.output
    assert "D101" in result.output


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ("UPDATE files SET rows_read = 99", "D101"),
        ("DELETE FROM line_items WHERE item_id = 1", "D102"),
        (("INSERT INTO findings (run_id, finding_id, group_id, item_id, source_file, tender_id, "
         "detector, kind, mechanism, severity, score, title, message, evidence) VALUES "
         "('r1', 'f1', 'g1', 999, 't.csv', 'T1', 'x', 'rule', 'price_outlier', 'high', 1, "
         "'t', 'm', '{}')"), "D106"),
        (("INSERT INTO findings (run_id, finding_id, group_id, source_file, tender_id, "
         "detector, kind, mechanism, severity, score, title, message, evidence) VALUES "
         "('ghost', 'f1', 'g1', 't.csv', 'T1', 'x', 'rule', 'nonsense', 'high', 1, "
         "'t', 'm', '{}')"), "D105"),
        # a run that says it stored its facts (a config row) but has none for its lines
        ("INSERT INTO run_config VALUES ('r1', 'pack', NULL, '', 'x', '')", "D110"),
        ("INSERT INTO line_facts (run_id, item_id) VALUES ('ghost', 1)", "D107"),
        # recognition for a line the run does not have
        ("INSERT INTO line_recognition VALUES ('r1', 999, 'none', 'other', 0.1)", "D113"),
        ("INSERT INTO line_recognition VALUES ('ghost', 1, 'none', 'other', 0.1)", "D107"),
    ],
)
def test_broken_invariants_are_reported(tmp_path, tamper, code):
    db = _db(tmp_path)
    con = duckdb.connect(str(db))
    con.execute(tamper)
    con.close()
    _, problems = run_doctor(db)
    assert code in {p.code for p in problems}
    result = CliRunner().invoke(cli, ["doctor", "--db", str(db)])
    assert result.exit_code == 1
    assert code in result.output


def test_older_database_is_migrated(tmp_path):
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute(store.META_DDL)
    con.execute("INSERT INTO iccaudit_meta VALUES ('schema_version', '0')")
    # an early database: findings without group_id and evidence, no non_items table
    con.execute("CREATE TABLE findings (run_id VARCHAR, finding_id VARCHAR, severity VARCHAR)")
    con.close()
    with pytest.raises(store.StoreError, match="doctor"):
        store.write_run(db, {"runs": _run_frame("r1")})
    notes, problems = run_doctor(db)
    assert any("migrated schema 0" in n for n in notes)
    assert problems == []
    con = duckdb.connect(str(db))
    cols = [r[0] for r in con.execute("DESCRIBE findings").fetchall()]
    assert {"group_id", "evidence", "est_excess_cny"} <= set(cols)
    assert con.execute("SELECT count(*) FROM non_items").fetchone()[0] == 0
    assert store.schema_version(con) == schema.SCHEMA_VERSION
    con.close()
    store.write_run(db, {"runs": _run_frame("r1")})  # usable again


def test_not_an_iccaudit_database(tmp_path):
    db = tmp_path / "other.duckdb"
    duckdb.connect(str(db)).execute("CREATE TABLE x(a INT)")
    result = CliRunner().invoke(cli, ["doctor", "--db", str(db)])
    assert result.exit_code == 1
    assert "not an iccaudit database" in result.output
