"""Recognition accuracy on the independent wording corpus (tests/wording/*.yaml).

Every corpus line goes through the real pipeline: written to a CSV tender file, ingested
(header search, value parsing, capacity from the spec text) and enriched (the lexicon's
recognition in the sandbox). Each concept must be recognised as the corpus states on at
least 95 % of its lines, the look-alikes included.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
import yaml

from iccaudit.core.paths import bundled_rules_dir, reference_dir
from iccaudit.detect.rules.ruleset import load_ruleset
from iccaudit.detect.rules.runner import run_rules
from iccaudit.enrich import build_sandbox
from iccaudit.normalise import ingest

CORPUS = Path(__file__).resolve().parent / "wording"
FLOOR = 0.95
FIELDS = ["kind", "name", "spec", "model", "condition", "unit", "price", "expect", "legit"]
#: The mechanism whose detection each concept's lines test.
MECHANISM = {"shell": "domestic_shell", "used": "used_as_new", "assembly": "head_module_split",
             "cooling": "liquid_cooling_markup"}
HEADER = ["序号", "货物名称", "品牌", "规格型号", "技术参数", "数量", "单位", "单价", "新旧程度"]


def corpus() -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text(encoding="utf-8"))
            for p in sorted(CORPUS.glob("*.yaml"))}


def _entries(doc: dict) -> list[dict]:
    return ([dict(e, kind="positive") for e in doc["positive"]]
            + [dict(e, kind="lookalike") for e in doc["lookalike"]])


@pytest.fixture(scope="module")
def recognised(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """Per concept: each corpus line with what the pipeline made of it."""
    folder = tmp_path_factory.mktemp("wording")
    out: dict[str, pd.DataFrame] = {}
    for name, doc in corpus().items():
        entries = _entries(doc)
        path = folder / f"{name}.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(HEADER)
            for i, e in enumerate(entries, start=1):
                w.writerow([i, e["name"], "", e.get("model", ""), e.get("spec", ""), 1,
                            e.get("unit", "台"), e.get("price", doc.get("default_price", 100000)),
                            e.get("condition", "")])
        batch = ingest([path])
        items = batch.items.copy()
        assert len(items) == len(entries), (name, batch.rejects)
        items.insert(0, "item_id", range(1, len(items) + 1))
        items.insert(0, "run_id", "wording")
        con = build_sandbox(items, reference_dir(bundled_rules_dir()))
        findings, _ = run_rules(con, load_ruleset([bundled_rules_dir()]).rules, "wording")
        flagged = {(int(n), m) for n, m in zip(findings["line_no"], findings["mechanism"],
                                               strict=True)}
        mechanism = MECHANISM.get(name)
        got = con.execute(
            "SELECT CAST(line_no AS INTEGER) AS n, category, accel_model, condition_class, "
            "shell_wording, spec_says_assembled, capacity_kw FROM items ORDER BY n").df()
        con.close()
        frame = pd.DataFrame(entries).reindex(columns=FIELDS)
        frame["n"] = range(1, len(entries) + 1)
        frame["flagged"] = [(n, mechanism) in flagged for n in frame["n"]]
        out[name] = frame.merge(got, on="n", validate="one_to_one")
    return out


def _ok(row: pd.Series, check: str) -> bool:
    expect = row.get("expect")
    positive = row["kind"] == "positive"
    if check == "shell_wording":
        return bool(row["shell_wording"]) == positive
    if check == "condition_class":
        return (row["condition_class"] in ("used", "refurbished")) == positive
    if check == "accel_model":
        want = None if expect == "none" else expect
        return (None if pd.isna(row["accel_model"]) else row["accel_model"]) == want
    if check == "assembly":
        if expect in ("machine_head", "gpu_module"):
            return row["category"] == expect
        if expect == "assembled":
            return bool(row["spec_says_assembled"])
        if expect == "not_module":
            return row["category"] != "gpu_module"
        if expect == "not_head":
            return row["category"] != "machine_head"
        if expect == "not_assembled":
            return not row["spec_says_assembled"]
        raise AssertionError(f"unknown expect {expect!r}")
    if check == "cooling":
        if not positive:
            return row["category"] != "liquid_cooling"
        if row["category"] != "liquid_cooling":
            return False
        if pd.isna(expect):
            return True
        return bool(abs(row["capacity_kw"] - float(expect)) <= 0.01 * float(expect))
    raise AssertionError(f"unknown check {check!r}")


def accuracy(frame: pd.DataFrame, check: str) -> tuple[float, pd.DataFrame]:
    ok = frame.apply(_ok, axis=1, check=check)
    return float(ok.mean()), frame[~ok]


def test_corpus_is_large_enough():
    for name, doc in corpus().items():
        assert len(doc["positive"]) >= 40, name
        assert len(doc["lookalike"]) >= 15, name
        texts = [(e["name"], e.get("spec"), e.get("model"), e.get("condition"))
                 for e in _entries(doc)]
        assert len(set(texts)) == len(texts), f"{name}: a line is repeated"


@pytest.mark.parametrize("concept", sorted(corpus()))
def test_recognition_accuracy(recognised, concept):
    frame = recognised[concept]
    acc, wrong = accuracy(frame, corpus()[concept]["check"])
    shown = wrong[["kind", "name", "spec", "model", "condition", "expect"]].to_string(
        max_colwidth=40)
    assert acc >= FLOOR, f"{concept}: accuracy {acc:.3f} < {FLOOR}; misrecognised:\n{shown}"


def _literals(path: Path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.value.strip() for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_lexicon_examples_share_no_wording_with_the_corpus_or_the_generator():
    """Three independent sources: the lexicon's examples, this corpus, and the wording the
    sample generator draws from (src/iccaudit/samples/). A test cannot pass because two of
    them share one list. Single words (二手, 全新) are vocabulary, not wording: compared from
    four characters on."""
    from iccaudit.core.paths import lexicon_dir
    from iccaudit.enrich.lexicon_check import load_lexicon

    lex = load_lexicon(lexicon_dir())
    examples = {e.text.strip() for c in lex.concepts.values() for e in c.examples}
    generator = set().union(*(_literals(p) for p in (
        Path(__file__).resolve().parents[1] / "src" / "iccaudit" / "samples").glob("*.py")))
    wording = {str(e[k]).strip() for doc in corpus().values() for e in _entries(doc)
               for k in ("name", "spec", "model", "condition") if e.get(k)}
    long = {x for x in examples if len(x) >= 4}
    assert not long & generator, sorted(long & generator)
    assert not long & wording, sorted(long & wording)


@pytest.mark.parametrize("concept", sorted(MECHANISM))
def test_detection_precision_on_the_corpus(recognised, concept):
    """Findings of the concept's mechanism on its corpus lines: a look-alike or a line
    honest at its price (legit) is a false positive."""
    frame = recognised[concept]
    honest = (frame["kind"] == "lookalike") | frame["legit"].eq(True)
    false_pos = frame[frame["flagged"] & honest]
    flagged = int(frame["flagged"].sum())
    assert not len(false_pos) or 1 - len(false_pos) / flagged >= FLOOR, (
        f"{concept}: {len(false_pos)} of {flagged} flagged lines are honest:\n"
        + false_pos[["kind", "name", "spec", "condition", "price"]].to_string())
