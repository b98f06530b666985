"""The lexicon: loaded and checked with located problems; normalisation; the run refuses a
broken one and stores its files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from iccaudit.cli import cli
from iccaudit.enrich.lexicon import REQUIRED, LexiconError
from iccaudit.enrich.lexicon_check import load_lexicon
from iccaudit.enrich.textnorm import fold
from iccaudit.normalise import values
from tests.enrich.conftest import line

RULES = Path(__file__).resolve().parents[2] / "rules"
LEXICON = RULES / "lexicon"


@pytest.fixture
def lexicon_copy(tmp_path) -> Path:
    target = tmp_path / "pack" / "lexicon"
    shutil.copytree(LEXICON, target)
    return target


def _edit(path: Path, old: str, new: str) -> int:
    """Replace ``old`` once; the 1-based line it was on."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def test_bundled_lexicon_loads_with_every_required_concept():
    lex = load_lexicon(LEXICON)
    for cid, kind in REQUIRED.items():
        assert lex.concepts[cid].kind == kind
    assert sum(len(c.examples) for c in lex.concepts.values()) >= 100
    assert len(lex.sha256) == 64


def test_broken_pattern_is_refused_with_file_and_line(lexicon_copy):
    line = _edit(lexicon_copy / "shell.yaml", "      # (1) ", "      - '(?=lookahead)'\n      # (1) ")
    with pytest.raises(LexiconError) as exc:
        load_lexicon(lexicon_copy)
    [problem] = exc.value.problems
    assert problem.path == str(lexicon_copy / "shell.yaml") and problem.line == line
    assert "broken pattern '(?=lookahead)'" in problem.reason


def test_duplicate_concept_is_refused_where_it_repeats(lexicon_copy):
    (lexicon_copy / "zz.yaml").write_text("concepts:\n  - id: shell\n    terms: [x]\n",
                                          encoding="utf-8")
    with pytest.raises(LexiconError) as exc:
        load_lexicon(lexicon_copy)
    assert [(p.path, p.line) for p in exc.value.problems] == [(str(lexicon_copy / "zz.yaml"), 2)]
    assert "duplicate concept 'shell'" in exc.value.problems[0].reason


def test_failing_examples_are_refused_each_on_its_line(lexicon_copy):
    line = _edit(lexicon_copy / "shell.yaml", "no_match: [", "no_match: [仅提供外壳, ")
    with pytest.raises(LexiconError) as exc:
        load_lexicon(lexicon_copy)
    assert [(p.line, p.reason) for p in exc.value.problems] == [
        (line, "concept shell: example '仅提供外壳' matches but must not")]


def test_missing_concept_and_unknown_field_are_refused(lexicon_copy):
    _edit(lexicon_copy / "assembly.yaml", "  - id: assembled", "  - id: assembled_x\n    colour: red")
    with pytest.raises(LexiconError) as exc:
        load_lexicon(lexicon_copy)
    reasons = " | ".join(p.reason for p in exc.value.problems)
    assert "missing concept 'assembled'" in reasons and "unknown field 'colour'" in reasons


def test_exclusions_remove_lookalike_phrases_before_matching(lexicon_copy):
    lex = load_lexicon(LEXICON)
    import duckdb

    con = duckdb.connect()
    says = ("SELECT regexp_matches(regexp_replace(?, ?, ' ', 'g'), ?)")
    module = lex.concepts["module"]
    assert con.execute(says, ["gpu模组", module.exclusion, module.pattern]).fetchone()[0]
    assert not con.execute(says, ["400g光模块", module.exclusion, module.pattern]).fetchone()[0]


def test_normalisation_folds_width_case_script_and_keeps_names():
    got = fold(pd.Series(["Ｈ１００　８卡", "液冷系統", "制冷量500㎾", "昇騰910B", None]), keep="昇")
    assert got.tolist()[:4] == ["h100 8卡", "液冷系统", "制冷量500kw", "昇腾910b"]
    assert got.isna().tolist() == [False] * 4 + [True]


def test_ingest_reads_every_power_unit_of_the_lexicon():
    units = load_lexicon(LEXICON).units["power"]
    cells = values.parse_capacity(pd.Series([f"10{u}" for u in units]))
    assert cells.value.tolist() == pytest.approx([10 * f for f in units.values()])
    # in free text only units of a kW or more: "500 W" there is a power supply
    large = {u: f for u, f in units.items() if f >= 1}
    kw = values.capacity_from_text(pd.Series([f"制冷量 10 {u.upper()}" for u in large]))
    assert kw.tolist() == pytest.approx([10 * f for f in large.values()])
    assert values.capacity_from_text(pd.Series(["8*RTX 4090", "制冷量：227冷吨"])).tolist()[1] \
        == pytest.approx(227 * 3.517)


def test_rules_validate_and_test_cover_the_lexicon(lexicon_copy):
    runner = CliRunner()
    ok = runner.invoke(cli, ["rules", "validate", str(LEXICON)])
    assert ok.exit_code == 0 and "lexicon: " in ok.output and " 0 problem(s)" in ok.output
    tested = runner.invoke(cli, ["rules", "test", str(LEXICON)])
    assert tested.exit_code == 0 and "lexicon examples: " in tested.output
    line = _edit(lexicon_copy / "shell.yaml", "no_match: [", "no_match: [仅提供外壳, ")
    bad = runner.invoke(cli, ["rules", "validate", str(lexicon_copy)])
    assert bad.exit_code == 3
    assert f"{lexicon_copy / 'shell.yaml'}:{line}: concept shell: example" in bad.output
    failed = runner.invoke(cli, ["rules", "test", str(lexicon_copy)])
    assert failed.exit_code == 3 and "1 failed" in failed.output


def test_a_run_refuses_a_broken_lexicon_and_stores_a_sound_one(tmp_path, monkeypatch):
    pack = tmp_path / "pack"
    shutil.copytree(RULES, pack, ignore=shutil.ignore_patterns("conftest.py", "__pycache__"))
    sample = Path(__file__).resolve().parents[2] / "data" / "samples" / "tenders" / \
        "T01_ZSZX-2024-3168.csv"
    monkeypatch.setenv("ICCAUDIT_RULES", str(pack))
    runner = CliRunner()
    good = runner.invoke(cli, ["score", str(sample), "--db", str(tmp_path / "a.duckdb"),
                               "--no-models", "-q"])
    assert good.exit_code == 0, good.output
    import duckdb

    with duckdb.connect(str(tmp_path / "a.duckdb"), read_only=True) as con:
        stored = con.execute("SELECT path FROM run_config WHERE kind = 'lexicon' "
                             "ORDER BY path").fetchall()
    assert ("shell.yaml",) in stored and ("normalise.yaml",) in stored
    _edit(pack / "lexicon" / "shell.yaml", "      # (1) ", "      - '(?=x)'\n      # (1) ")
    bad = runner.invoke(cli, ["score", str(sample), "--db", str(tmp_path / "b.duckdb"),
                              "--no-models", "-q"])
    assert bad.exit_code == 3 and "broken pattern" in bad.output
    assert not (tmp_path / "b.duckdb").exists()


def test_the_worked_example_of_docs_rules(tmp_path, monkeypatch):
    """docs/rules.md: a line gaps lists as unknown, two general rules added, the shell found."""
    tender = tmp_path / "清单.csv"
    tender.write_text("序号,货物名称,品牌,规格型号,技术参数,数量,单位,单价\n"
                      "1,GPU服务器,浪潮,NF5688M7,8*H100 SXM5,2,台,2400000\n"
                      "2,算力整柜,某某科技,ZG-8000,国产算力平台，展陈件，不上电,4,台,1500000\n",
                      encoding="utf-8")
    pack = tmp_path / "pack"
    shutil.copytree(RULES, pack, ignore=shutil.ignore_patterns("conftest.py", "__pycache__"))
    monkeypatch.setenv("ICCAUDIT_RULES", str(pack))
    runner = CliRunner()

    def score(db: str) -> list[tuple[str, str]]:
        out = runner.invoke(cli, ["score", str(tender), "--db", str(tmp_path / db),
                                  "--no-models", "-q"])
        assert out.exit_code == 0, out.output
        import duckdb

        with duckdb.connect(str(tmp_path / db), read_only=True) as con:
            return con.execute("SELECT detector, line_no FROM findings").fetchall()

    assert score("before.duckdb") == []
    gaps = runner.invoke(cli, ["lexicon", "gaps", "--db", str(tmp_path / "before.duckdb")])
    assert "1 unknown and 0 model-only line(s) of 2 (55.6%" in gaps.output
    assert "算力整柜" in gaps.output and "none" in gaps.output
    docs = (RULES.parent / "docs" / "rules.md").read_text(encoding="utf-8")
    edits = [("category.yaml", r"patterns: ['\bnodes?\b', '\bdgx\b']",
              r"patterns: ['\bnodes?\b', '\bdgx\b', '算力\s*(?:整柜|单元|底座)']"),
             ("shell.yaml", "不能加电, 无法开机, 不能开机, 仅包装",
              "不能加电, 无法开机, 不能开机, 展陈, 不上电, 不通电, 仅包装"),
             ("shell.yaml", "空机壳交付, 仅交付包装, chassis-only",
              "空机壳交付, 仅交付包装, 展陈件（不上电）, chassis-only")]
    for name, old, new in edits:
        assert "+" + " " * 4 in docs and new.split(", ")[-2] in docs  # the diff shows it
        _edit(pack / "lexicon" / name, old, new)
    assert runner.invoke(cli, ["rules", "validate", str(pack / "lexicon")]).exit_code == 0
    assert score("after.duckdb") == [("domestic-shell-wording", "2")]


def test_a_vendor_word_does_not_hide_the_longer_alias(sandbox):
    con = sandbox([line("加速卡", 200_000, model="NVIDIA H100 PCIe 80GB", unit="张"),
                   line("加速卡", 200_000, model="NVIDIA H100 80GB", unit="张")])
    got = con.execute("SELECT accel_model FROM items ORDER BY item_id").fetchall()
    assert got == [("H100PCIe",), ("H100",)]


def test_a_capture_with_the_wrong_groups_is_refused_where_it_is(lexicon_copy):
    """The views read storage_product's three groups (drives, size, unit): a pattern that
    gives two would price storage on the wrong number."""
    path = lexicon_copy / "capacity.yaml"
    text = path.read_text(encoding="utf-8")
    old = r"(\d+)\s*(?:块|个|片)?\s*[x×*]\s*(\d+(?:\.\d+)?)\s*(tib|tb|pib|pb)"
    assert old in text
    path.write_text(text.replace(old, r"(\d+)\s*[x×*]\s*(\d+(?:\.\d+)?)\s*(?:tib|tb|pib|pb)"),
                    encoding="utf-8")
    line = text[: text.index("  - id: storage_product")].count("\n") + 1
    with pytest.raises(LexiconError) as exc:
        load_lexicon(lexicon_copy)
    assert [(p.line, p.reason) for p in exc.value.problems] == [
        (line, "concept storage_product: a capture concept has one pattern with 3 (group)s")]
