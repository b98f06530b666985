"""A database written before verdicts (schema 1) is migrated by ``iccaudit doctor``: its
findings get fingerprints, it gets an identity, the review tables and the views."""

from __future__ import annotations

import duckdb

from iccaudit.store.views import VIEWS
from tests.review.conftest import iccaudit, query


def as_schema_1(db) -> None:
    con = duckdb.connect(str(db))
    try:
        for view in reversed(VIEWS):
            con.execute(f"DROP VIEW {view}")
        con.execute("DROP TABLE verdicts")
        con.execute("DROP TABLE suppressions")
        con.execute("ALTER TABLE findings DROP COLUMN fingerprint")
        con.execute("ALTER TABLE findings DROP COLUMN rule_version")
        con.execute("DELETE FROM iccaudit_meta WHERE key = 'database_id'")
        con.execute("UPDATE iccaudit_meta SET value = '1' WHERE key = 'schema_version'")
    finally:
        con.close()


def test_schema_1_is_refused_then_migrated(db, tmp_path):
    before = dict(query(db, "SELECT finding_id, fingerprint FROM findings"))
    as_schema_1(db)
    proc = iccaudit("rescore", "--db", str(db), "--format", "json", check=False)
    assert proc.returncode == 1 and "run `iccaudit doctor --db FILE` to migrate it" in proc.stderr
    out = iccaudit("doctor", "--db", str(db))
    assert "migrated schema 1 -> 2" in out.stdout and "FAIL" not in out.stdout
    after = dict(query(db, "SELECT finding_id, fingerprint FROM findings"))
    assert set(after) == set(before) and all(after.values())
    # without the rule version of old findings, their fingerprints differ from a new run's
    assert not set(after.values()) & set(before.values())
    assert query(db, "SELECT count(*) FROM iccaudit_meta WHERE key = 'database_id'") == [(1,)]
    assert query(db, "SELECT count(*) FROM latest_findings") == [(len(after),)]
    # and the review loop works on it
    xlsx = tmp_path / "old.xlsx"
    iccaudit("export", "--db", str(db), "--xlsx", str(xlsx))
    iccaudit("verdicts", "import", str(xlsx), "--db", str(db))


def test_doctor_flags_bad_fingerprints_and_verdicts(db):
    con = duckdb.connect(str(db))
    try:
        con.execute("""INSERT INTO verdicts VALUES ((SELECT run_id FROM latest_run), 1,
                       'ffffffffffffffff', 'confirmed', NULL, 'x', now()::TIMESTAMP, 'test')""")
        con.execute("UPDATE findings SET fingerprint = NULL WHERE finding_id = "
                    "(SELECT min(finding_id) FROM findings)")
    finally:
        con.close()
    proc = iccaudit("doctor", "--db", str(db), check=False)
    assert proc.returncode == 1
    assert "FAIL  D111" in proc.stdout and "FAIL  D112" in proc.stdout
