"""Verdicts are appended, never overwritten: the latest is current, the earlier ones stay;
rule and model versions hash logic, not layout."""

from __future__ import annotations

import pytest

from iccaudit import store
from iccaudit.detect.models.config import load_settings
from iccaudit.detect.models.findings import settings_version
from iccaudit.store.verdicts import VerdictError, record_one
from tests.review.conftest import query


def test_a_later_verdict_supersedes_and_the_history_stays(db):
    fp = query(db, "SELECT fingerprint FROM latest_findings ORDER BY fingerprint LIMIT 1")[0][0]
    con = store.connect(db)
    try:
        record_one(con, fp, "needs-info", "need the delivery note", reviewer="wang",
                   source="test")
        record_one(con, fp, "dismissed", "delivery note shows refurbished, declared",
                   reviewer="li", source="test")
        with pytest.raises(VerdictError, match="unknown status 'closed'"):
            record_one(con, fp, "closed", None, reviewer="li", source="test")
        with pytest.raises(VerdictError, match="no finding 'nope' in the latest run"):
            record_one(con, "nope", "confirmed", None, reviewer="li", source="test")
    finally:
        con.close()
    assert query(db, "SELECT status, reviewer FROM verdicts ORDER BY verdict_id") == [
        ("needs-info", "wang"), ("dismissed", "li")]
    assert query(db, "SELECT status, reason FROM current_verdicts") == [
        ("dismissed", "delivery note shows refurbished, declared")]
    assert query(db, "SELECT verdict, dismissed FROM latest_findings WHERE fingerprint = ?",
                 [fp]) == [("dismissed", True)]


def test_model_version_is_the_settings_not_their_layout(tmp_path):
    from iccaudit.core.paths import bundled_rules_dir

    source = bundled_rules_dir() / "models.yaml"
    base = settings_version(load_settings(source))
    text = source.read_text(encoding="utf-8")
    commented = tmp_path / "commented.yaml"
    commented.write_text("# reviewed 2026\n" + text, encoding="utf-8")
    assert settings_version(load_settings(commented)) == base
    changed = tmp_path / "changed.yaml"
    assert "score_threshold: 0.8\n" in text
    changed.write_text(text.replace("score_threshold: 0.8", "score_threshold: 0.85"),
                       encoding="utf-8")
    assert settings_version(load_settings(changed)) != base
