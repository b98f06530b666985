"""A run stores what produced it (run_config) and what it derived for its lines (line_facts);
the report and the exports read those and nothing else, so a run's report does not change
when the reference book does."""

from __future__ import annotations

import ast
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from iccaudit import store
from iccaudit.core import schema
from iccaudit.core.paths import bundled_rules_dir
from iccaudit.report.export import export_findings
from iccaudit.report.html import render_report, write_report
from iccaudit.run import RescoreOptions, ScoreOptions, run_rescore, run_score
from tests.report.conftest import SAMPLES
from tests.report.dbfactory import RUN_NEW, RUN_OLD

REPORT = Path(__file__).resolve().parents[2] / "src" / "iccaudit" / "report"

COLD_PLATE_BAND = "¥5,000 – ¥6,000"
H100_SERVER = "{from: 2024-01, low: 2700000, high: 2800000, peak: 2800000"


def _changed_pack(tmp: Path) -> Path:
    """A copy of the bundled pack with the H100 server series' first point and the
    cold-plate band raised."""
    pack = tmp / "rules"
    shutil.copytree(bundled_rules_dir(), pack, ignore=shutil.ignore_patterns("__pycache__"))
    prices = pack / "reference" / "prices.yaml"
    text = prices.read_text(encoding="utf-8")
    assert H100_SERVER in text
    prices.write_text(text.replace(H100_SERVER, "{from: 2024-01, low: 2700000, high: 3200000, "
                                   "peak: 3300000"), encoding="utf-8")
    cooling = pack / "reference" / "cooling.yaml"
    text = cooling.read_text(encoding="utf-8")
    assert "low: 5000\n    high: 6000" in text
    cooling.write_text(text.replace("low: 5000\n    high: 6000", "low: 5000\n    high: 7000", 1),
                       encoding="utf-8")
    return pack


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, str, str, str, str, str, list[bytes]]:
    """The samples scored, the first run's report, the reference book changed ($ICCAUDIT_RULES
    at a copy), the samples scored again. Returns (db, run 1, run 2, report 1 before the
    change, report 1 after it, report 2, [CSV export of run 1 before, after])."""
    tmp = tmp_path_factory.mktemp("stored")
    db = tmp / "f.duckdb"
    first = run_score(ScoreOptions(paths=[SAMPLES], db=db, models=False)).run_id
    before = render_report(db, lang="en", run_id=first)
    csv = [export_findings(db, csv=tmp / "before.csv", run_id=first)[0].read_bytes()]
    pack = _changed_pack(tmp)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ICCAUDIT_RULES", str(pack))
        second = run_score(ScoreOptions(paths=[SAMPLES], db=db, models=False)).run_id
        after = render_report(db, lang="en", run_id=first)
        second_report = render_report(db, lang="en", run_id=second)
        csv.append(export_findings(db, csv=tmp / "after.csv", run_id=first)[0].read_bytes())
    assert first != second
    return db, first, second, before, after, second_report, csv


def test_first_runs_report_is_unchanged_by_a_new_reference_book(two_runs):
    db, first, second, before, after, second_report, _ = two_runs
    assert after == before  # byte for byte
    # ... and not because nothing changed: the second run saw the new book
    assert COLD_PLATE_BAND in before and COLD_PLATE_BAND not in second_report
    assert "¥5,000 – ¥7,000" in second_report
    con = store.connect(db, read_only=True)
    try:
        highs = dict(con.execute(
            "SELECT run_id, max(ref_high_cny) FILTER (WHERE accel_model = 'H100' "
            "AND ref_basis = 'server') FROM line_facts GROUP BY run_id").fetchall())
        packs = dict(con.execute(
            "SELECT run_id, sha256 FROM run_config WHERE kind = 'pack'").fetchall())
    finally:
        con.close()
    assert highs[second] > highs[first]
    assert packs[first] != packs[second]


def test_exports_read_the_stored_run(two_runs, tmp_path):
    db, first, *_, csv = two_runs
    assert csv[0] == csv[1] and first.encode() in csv[0]
    written = export_findings(db, tmp_path / "f.xlsx", tmp_path / "f.csv",
                              tmp_path / "f.parquet", run_id=first)
    frame = pd.read_parquet(written[2])
    assert set(frame["run_id"]) == {first} and len(frame) > 0


def test_run_config_records_every_file_with_its_hash_and_text(two_runs):
    db, first, *_ = two_runs
    con = store.connect(db, read_only=True)
    try:
        rows = con.execute("SELECT kind, root, path, sha256, text FROM run_config "
                           "WHERE run_id = ? ORDER BY kind, path", [first]).fetchall()
    finally:
        con.close()
    kinds = {r[0] for r in rows}
    assert kinds == {"pack", "rules", "reference", "lexicon"}  # no models, no mapping
    bundled = bundled_rules_dir().resolve()
    ref = [r for r in rows if r[0] == "reference"]
    assert {r[2] for r in ref} >= {"accelerators.yaml", "cooling.yaml", "assembly.yaml",
                                   "brands.yaml"}
    for kind, root, path, sha, text in rows:
        if kind == "pack":
            continue
        data = (Path(root) / path).read_bytes()
        assert sha == hashlib.sha256(data).hexdigest() and text == data.decode()
        assert Path(root).is_relative_to(bundled)
    rules = [r for r in rows if r[0] == "rules"]
    assert len(rules) >= 10 and all(r[2].endswith(".yaml") for r in rules)
    assert not any(r[2].startswith(("reference/", "lexicon/")) or r[2] == "models.yaml"
                   for r in rules)
    lexicon = {r[2] for r in rows if r[0] == "lexicon"}
    assert {"shell.yaml", "normalise.yaml", "training.csv"} <= lexicon
    pack = next(r for r in rows if r[0] == "pack")
    manifest = "".join(sorted(f"{k}\t{p}\t{s}\n" for k, _, p, s, _ in rows if k != "pack"))
    assert pack[4] == manifest and pack[3] == hashlib.sha256(manifest.encode()).hexdigest()


def test_same_pack_same_hash_and_models_and_mapping_are_recorded(tmp_path):
    db = tmp_path / "f.duckdb"
    mapping = tmp_path / "map.yaml"
    mapping.write_text("headers:\n  货物名称: item_name\n", encoding="utf-8")
    tender = next(p for p in sorted(SAMPLES.iterdir()) if p.suffix == ".csv")
    a = run_score(ScoreOptions(paths=[tender], db=db, models=True))
    b = run_score(ScoreOptions(paths=[tender], db=db, models=True))
    c = run_score(ScoreOptions(paths=[tender], db=db, models=False, mapping=mapping))
    con = store.connect(db, read_only=True)
    try:
        packs = dict(con.execute("SELECT run_id, sha256 FROM run_config WHERE kind = 'pack'")
                     .fetchall())
        models = con.execute("SELECT run_id, path, text FROM run_config WHERE kind = 'models'"
                             ).fetchall()
        mapped = con.execute("SELECT run_id, root, path, text FROM run_config "
                             "WHERE kind = 'mapping'").fetchall()
        facts = con.execute("SELECT run_id, count(*) FROM line_facts GROUP BY ALL").fetchall()
        lines = con.execute("SELECT run_id, count(*) FROM line_items GROUP BY ALL").fetchall()
    finally:
        con.close()
    assert packs[a.run_id] == packs[b.run_id] != packs[c.run_id]
    assert {r[0] for r in models} == {a.run_id, b.run_id}
    assert models[0][1] == "models.yaml"
    assert models[0][2] == (bundled_rules_dir() / "models.yaml").read_text(encoding="utf-8")
    assert mapped == [(c.run_id, str(tmp_path.resolve()), "map.yaml",
                       mapping.read_text(encoding="utf-8"))]
    assert sorted(facts) == sorted(lines)  # one fact row per line
    from iccaudit.store.doctor import run_doctor

    assert run_doctor(db)[1] == []


def test_replacement_pack_records_the_bundled_reference_it_falls_back_to(tmp_path):
    """--rules with a whole pack without reference/ or models.yaml replaces the rules; the
    sandbox loads the bundled reference book and detector settings, the record says so and
    the run warns."""
    pack = tmp_path / "mypack"
    shutil.copytree(bundled_rules_dir() / "price_outlier", pack / "price_outlier")
    db = tmp_path / "f.duckdb"
    tender = next(p for p in sorted(SAMPLES.iterdir()) if p.suffix == ".csv")
    run = run_score(ScoreOptions(paths=[tender], db=db, rules_dirs=[pack], models=True))
    con = store.connect(db, read_only=True)
    try:
        rows = con.execute("SELECT kind, root, path FROM run_config WHERE run_id = ?",
                           [run.run_id]).fetchall()
    finally:
        con.close()
    roots = {kind: {r for k, r, _ in rows if k == kind} for kind, _, _ in rows}
    assert roots["rules"] == {str(pack.resolve())}
    assert all(p.startswith("price_outlier/") for k, _, p in rows if k == "rules")
    assert roots["reference"] == {str((bundled_rules_dir() / "reference").resolve())}
    assert roots["models"] == {str(bundled_rules_dir().resolve())}
    warned = "\n".join(run.warnings)
    assert f"rule pack {pack} has no reference/ folder: using the reference book" in warned
    assert f"rule pack {pack} has no models.yaml: using the detector settings" in warned


def test_replacement_pack_brings_its_own_reference_and_settings(tmp_path):
    """A pack with reference/ and models.yaml runs with them: an H100 server series raised
    by half in the pack's book moves the stored reference of the run's H100 lines."""
    pack = tmp_path / "mypack"
    shutil.copytree(bundled_rules_dir() / "price_outlier", pack / "price_outlier")
    shutil.copytree(bundled_rules_dir() / "reference", pack / "reference")
    shutil.copy(bundled_rules_dir() / "models.yaml", pack / "models.yaml")
    prices = pack / "reference" / "prices.yaml"
    text = prices.read_text(encoding="utf-8")
    text = text.replace("peak: 2800000", "peak: 4200000")
    for low, high in (("2700000", "2800000"), ("2350000", "2450000")):
        assert f"low: {low}, high: {high}" in text
        text = text.replace(f"low: {low}, high: {high}",
                            f"low: {int(low) * 3 // 2}, high: {int(high) * 3 // 2}")
    prices.write_text(text, encoding="utf-8")
    db = tmp_path / "f.duckdb"
    bundled = run_score(ScoreOptions(paths=[SAMPLES], db=db, models=False))
    own = run_score(ScoreOptions(paths=[SAMPLES], db=db, rules_dirs=[pack], models=True))
    assert not [w for w in own.warnings if "rule pack" in w]
    con = store.connect(db, read_only=True)
    try:
        rows = con.execute("SELECT kind, root FROM run_config WHERE run_id = ?",
                           [own.run_id]).fetchall()
        ratio = con.execute(
            """WITH f AS (SELECT lf.*, li.source_file, li.source_sheet, li.source_row
                          FROM line_facts lf JOIN line_items li USING (run_id, item_id))
               SELECT median(b.ref_high_cny / a.ref_high_cny), count(*)
               FROM f a JOIN f b USING (source_file, source_sheet, source_row)
               WHERE a.run_id = ? AND b.run_id = ? AND a.ref_basis = 'server'
                 AND a.accel_model = 'H100'""", [bundled.run_id, own.run_id]).fetchone()
    finally:
        con.close()
    assert {r for k, r in rows if k == "reference"} == {str((pack / "reference").resolve())}
    assert {r for k, r in rows if k == "models"} == {str(pack.resolve())}
    assert ratio[1] > 0 and ratio[0] == pytest.approx(1.5)


def test_rescore_stores_its_own_config_and_facts(tmp_path):
    db = tmp_path / "f.duckdb"
    tender = next(p for p in sorted(SAMPLES.iterdir()) if p.suffix == ".csv")
    first = run_score(ScoreOptions(paths=[tender], db=db, models=False))
    again = run_rescore(RescoreOptions(db=db, models=False))
    con = store.connect(db, read_only=True)
    try:
        counts = dict(con.execute("SELECT run_id, count(*) FROM line_facts GROUP BY ALL")
                      .fetchall())
        config = dict(con.execute("SELECT run_id, count(*) FROM run_config GROUP BY ALL")
                      .fetchall())
        same = con.execute(
            "SELECT count(*) FROM (SELECT * EXCLUDE (run_id) FROM line_facts WHERE run_id = ? "
            "EXCEPT SELECT * EXCLUDE (run_id) FROM line_facts WHERE run_id = ?)",
            [again.run_id, first.run_id]).fetchall()[0][0]
    finally:
        con.close()
    assert counts[again.run_id] == counts[first.run_id] > 0
    assert config[again.run_id] == config[first.run_id] > 1
    assert same == 0  # same lines, same book: same facts


def test_a_run_without_stored_facts_says_so(fixture_db, tmp_path):
    """The fixture's old run predates line_facts/run_config: no re-enrichment, a plain note."""
    old = write_report(fixture_db, tmp_path / "old.html", lang="en", run_id=RUN_OLD)
    html = old.read_text(encoding="utf-8")
    assert "This run predates stored line facts" in html
    assert 'id="plot-cooling"' not in html and 'id="plot-peers"' not in html
    assert "not stored (a run from an older version)" in html
    new = write_report(fixture_db, tmp_path / "new.html", lang="en", run_id=RUN_NEW)
    html = new.read_text(encoding="utf-8")
    assert "predates" not in html and 'id="plot-cooling"' in html


def test_an_older_database_opens_reports_and_migrates(fixture_db, tmp_path):
    """A database written before the new tables existed: the report reads it (read-only, the
    tables missing) and says the run predates stored facts; doctor adds the tables."""
    from iccaudit.store.doctor import run_doctor

    db = tmp_path / "older.duckdb"
    shutil.copy(fixture_db, db)
    con = duckdb.connect(str(db))
    con.execute("DROP TABLE line_facts")
    con.execute("DROP TABLE run_config")
    con.close()
    html = write_report(db, tmp_path / "r.html", lang="en", run_id=RUN_NEW).read_text(
        encoding="utf-8")
    assert "This run predates stored line facts" in html
    _, problems = run_doctor(db)
    assert problems == []
    con = store.connect(db, read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables")
                  .fetchall()}
    finally:
        con.close()
    assert {"line_facts", "run_config"} <= tables
    html = write_report(db, tmp_path / "r2.html", lang="en", run_id=RUN_NEW).read_text(
        encoding="utf-8")
    assert "This run predates stored line facts" in html


def test_line_facts_copy_the_items_view():
    """Every line_facts column is an items column of the same meaning (the data dictionary)."""
    from iccaudit.enrich.dictionary import DICTIONARY

    items = DICTIONARY["items"]
    for name, field in schema.LineFact.model_fields.items():
        assert name in items, name
        want = schema.sql_type(field.annotation)
        assert items[name].type == want or (items[name].type, want) == ("INTEGER", "BIGINT")


def test_report_does_not_import_enrich():
    """The report reads stored values: no module of it imports the enrich stage, and
    rendering a report loads none of it."""
    for path in REPORT.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.startswith("iccaudit.enrich") for n in names), path.name


def test_rendering_loads_no_enrich_module(fixture_db, tmp_path):
    code = ("import sys; from iccaudit.report.html import render_report; "
            f"render_report({str(fixture_db)!r}); "
            "print(sorted(m for m in sys.modules if m.startswith('iccaudit.enrich')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_runs_diff_shows_what_the_new_reference_book_changed(two_runs):
    """`runs diff` between the run before and after the reference change: the findings that
    moved are those of rules that read reference prices, and a run against itself is empty."""
    from iccaudit.report.diff import diff_runs, list_runs

    db, first, second, *_ = two_runs
    a, b, diff = diff_runs(db)  # default: the run before the latest, and the latest
    assert (a, b) == (first, second)
    assert len(diff), "raising the H100 and cold-plate references changed no finding"
    assert set(diff["change"]) <= {"added", "removed", "changed"}
    con = store.connect(db, read_only=True)
    try:
        # what each rule's findings were, per run: the diff must agree with a plain count
        counts = dict(con.execute(
            "SELECT run_id, count(*) FROM findings WHERE run_id IN (?, ?) GROUP BY run_id",
            [first, second]).fetchall())
    finally:
        con.close()
    added, removed = (diff["change"] == "added").sum(), (diff["change"] == "removed").sum()
    assert counts[second] - counts[first] == added - removed
    # the rules that moved read the reference book (price or cooling bands)
    moved = set(diff["detector"])
    assert moved & {"above-reference-peak", "cooling-per-kw-markup", "head-module-no-discount",
                    "head-module-thin-discount", "domestic-token-price"}, moved
    assert not [d for d in moved if d in ("dup-identical-line", "bill-total-mismatch")]
    assert len(diff_runs(db, second, second)[2]) == 0
    runs = list_runs(db)
    assert list(runs["run_id"]) == [first, second]
    assert runs["config_sha256"].nunique() == 2  # the reference book differs, so does the hash


def test_runs_diff_errors_are_one_line(two_runs, tmp_path):
    db, *_ = two_runs
    cmd = [sys.executable, "-m", "iccaudit.cli", "runs", "diff", "no-such-run", "--db", str(db)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "no run 'no-such-run'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    one = tmp_path / "one.duckdb"
    run_score(ScoreOptions(paths=[SAMPLES], db=one, models=False))
    proc = subprocess.run([sys.executable, "-m", "iccaudit.cli", "runs", "diff", "--db",
                           str(one)], capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "first run" in proc.stderr
