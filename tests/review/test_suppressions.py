"""A dismissal made a suppression: stored with who and why, checked, applied to later runs,
listed in the report."""

from __future__ import annotations

import duckdb
import pytest

from iccaudit import store
from iccaudit.store.suppress import SuppressionError, add_suppression
from iccaudit.store.verdicts import record_one
from tests.review.conftest import iccaudit, query


def first(db, detector: str) -> tuple[str, str | None]:
    return query(db, "SELECT fingerprint, supplier FROM latest_findings WHERE detector = ? "
                     "ORDER BY est_excess_cny DESC NULLS LAST, fingerprint LIMIT 1",
                 [detector])[0]


def dismiss(db, fp: str) -> None:
    con = store.connect(db)
    try:
        record_one(con, fp, "dismissed", "contract allows it", reviewer="zhao", source="test")
    finally:
        con.close()


@pytest.mark.parametrize("scope", ["line", "supplier", "rule"])
def test_suppression_scopes(db, scope, tmp_path):
    fp, supplier = first(db, "export-controlled-after-ban")
    dismiss(db, fp)
    args = ["verdicts", "suppress", fp, "--db", str(db), "--scope", scope, "--by", "zhao",
            "--reason", "licensed import, documents on file"]
    if scope == "rule":
        args += ["--condition", "supplier = '" + supplier.replace("'", "''") + "'"]
    out = iccaudit(*args)
    assert out.stdout.strip() == f"suppression 1 stored ({scope})"
    iccaudit("rescore", "--db", str(db), "--format", "json")
    suppressed = query(db, "SELECT fingerprint, detector, supplier FROM latest_findings "
                           "WHERE suppressed_by = 1")
    same_supplier = query(db, "SELECT count(*) FROM latest_findings WHERE detector = ? "
                              "AND supplier = ?", ["export-controlled-after-ban", supplier])[0][0]
    if scope == "line":
        assert [r[0] for r in suppressed] == [fp]
    else:
        assert len(suppressed) == same_supplier > 1
        assert {(r[1], r[2]) for r in suppressed} == {("export-controlled-after-ban", supplier)}
    # suppressed findings are dismissed for the totals, still stored
    assert query(db, "SELECT bool_and(dismissed) FROM latest_findings WHERE suppressed_by = 1"
                 ) == [(True,)]
    row = query(db, "SELECT scope, created_by, reason, from_fingerprint FROM suppressions")
    assert row == [(scope, "zhao", "licensed import, documents on file", fp)]
    html = tmp_path / "r.html"
    iccaudit("report", "--db", str(db), "--out", str(html), "--lang", "en")
    text = html.read_text(encoding="utf-8")
    assert 'id="suppressions"' in text and "licensed import, documents on file" in text


@pytest.mark.parametrize(("condition", "message"), [
    ("unit_price_cny > 1; DROP TABLE findings", "exactly one expression"),
    ("read_csv('/etc/passwd') IS NOT NULL", "is not allowed"),
    ("secret_column = 1", "unknown column 'secret_column'"),
    ("f.supplier = 'x'", "unknown column 'f.supplier'"),
    ("unit_price_cny", "must be true or false"),
    ("(SELECT 1) = 1", "is not allowed"),
])
def test_bad_conditions_are_refused(db, condition, message):
    fp, _ = first(db, "export-controlled-after-ban")
    dismiss(db, fp)
    con = duckdb.connect(str(db))
    try:
        with pytest.raises(SuppressionError, match=message.replace("(", r"\(")):
            add_suppression(con, fp, "rule", reason="x", created_by="y", condition=condition)
        assert con.execute("SELECT count(*) FROM suppressions").fetchall() == [(0,)]
    finally:
        con.close()


def test_only_a_dismissal_becomes_a_suppression(db):
    fp, _ = first(db, "export-controlled-after-ban")
    proc = iccaudit("verdicts", "suppress", fp, "--db", str(db), "--scope", "line",
                    "--reason", "x", "--by", "y", check=False)
    assert proc.returncode == 1
    assert "is not dismissed (its verdict: none); dismiss it first" in proc.stderr
