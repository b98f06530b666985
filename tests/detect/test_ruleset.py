"""Rule files: hostile YAML refused, every error collected with file:line:col, pack layout."""

from __future__ import annotations

from pathlib import Path

from iccaudit.detect.rules.ruleset import MAX_FILE_BYTES, load_ruleset, resolve_rule_dirs

from .conftest import DICTIONARY, rule_yaml

GOOD_BODY = """\
where: unit_price_cny > 2 * ref_high_cny
message:
  zh: "单价 {unit_price_cny:,.0f}"
  en: "unit price {unit_price_cny:,.0f}"
evidence: [unit_price_cny]
tests:
  - name: high
    expect: hit
    row: {unit_price_cny: 9000000}
  - name: low
    expect: miss
    row: {unit_price_cny: 100}
"""


def load(*paths: Path):
    return load_ruleset(list(paths), DICTIONARY)


def only(ruleset, code):
    found = [e for e in ruleset.errors + ruleset.warnings if e.code == code]
    assert found, [str(e) for e in ruleset.errors + ruleset.warnings]
    return found[0]


def test_a_good_rule_loads_without_problems(write_rule):
    rs = load(write_rule(rule_yaml(body=GOOD_BODY)))
    assert [r.id for r in rs.rules] == ["test-rule"]
    assert rs.errors == [] and rs.warnings == []


# --- hostile YAML --------------------------------------------------------------------------

def test_python_tag_is_refused_with_location(write_rule):
    text = rule_yaml(body=GOOD_BODY) + "extra: !!python/object/apply:os.system ['echo pwned']\n"
    rs = load(write_rule(text))
    err = only(rs, "E102")
    assert "!!python/object/apply:os.system" in err.message
    assert (err.line, err.col) == (text.splitlines().index(
        "extra: !!python/object/apply:os.system ['echo pwned']") + 1, 8)
    assert rs.rules == []


def test_billion_laughs_is_refused_before_expansion(write_rule):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    rs = load(write_rule("\n".join(lines) + "\n"))
    err = only(rs, "E102")
    assert "anchor" in err.message and (err.line, err.col) == (1, 4)


def test_alias_alone_is_refused(write_rule):
    rs = load(write_rule(rule_yaml(body=GOOD_BODY) + "references: *nothing\n"))
    # an undefined alias is a YAML error, a defined one E102: either way the rule is refused
    assert {e.code for e in rs.errors} & {"E100", "E102"}
    assert rs.rules == []


def test_ten_megabyte_file_is_not_read(write_rule):
    path = write_rule(rule_yaml(body=GOOD_BODY))
    with path.open("a", encoding="utf-8") as fh:
        fh.write("# " + "x" * (10 * 1024 * 1024) + "\n")
    rs = load(path)
    err = only(rs, "E101")
    assert f"{MAX_FILE_BYTES:,}" in err.message and (err.line, err.col) == (1, 1)


def test_yaml_syntax_error_has_location(write_rule):
    rs = load(write_rule("id: x\ntitle: [unclosed\n"))
    err = only(rs, "E100")
    assert err.line >= 2


def test_not_utf8_and_several_documents(write_rule, tmp_path):
    p = write_rule("", name="latin")
    p.write_bytes("id: \xe9t\xe9\n".encode("latin-1"))
    assert only(load(p), "E101").message.startswith("not UTF-8")
    q = write_rule(rule_yaml(body=GOOD_BODY) + "---\nid: second\n", name="two")
    assert only(load(q), "E104")


def test_duplicate_key_is_an_error(write_rule):
    rs = load(write_rule(rule_yaml(body=GOOD_BODY) + "severity: low\n"))
    err = only(rs, "E115")
    assert "severity" in err.message


# --- schema errors with locations ----------------------------------------------------------

def test_unknown_column_location_inside_a_plain_expression(write_rule):
    body = GOOD_BODY.replace("where: unit_price_cny > 2 * ref_high_cny",
                             "where: quantity > 1 AND unit_prce > 2")
    text = rule_yaml(body=body)
    rs = load(write_rule(text))
    err = only(rs, "E103")
    line = text.splitlines()[err.line - 1]
    assert line[err.col - 1:].startswith("unit_prce")
    assert "did you mean unit_price_cny?" in err.message
    assert str(err).startswith(f"{err.path}:{err.line}:{err.col}: E103 unknown column")
    rendered = err.render().splitlines()
    assert rendered[1].strip() == line.strip()
    assert rendered[2].index("^") == rendered[1].index("unit_prce")


def test_unknown_column_location_inside_a_block_expression(write_rule):
    body = GOOD_BODY.replace("where: unit_price_cny > 2 * ref_high_cny",
                             "where: |\n  quantity > 1\n    AND unit_prce > 2")
    text = rule_yaml(body=body)
    rs = load(write_rule(text))
    err = only(rs, "E103")
    line = text.splitlines()[err.line - 1]
    assert line[err.col - 1:].startswith("unit_prce")


def test_unknown_column_location_inside_a_quoted_expression(write_rule):
    body = GOOD_BODY.replace("where: unit_price_cny > 2 * ref_high_cny",
                             "where: \"getenv('HOME') = 'x'\"")
    text = rule_yaml(body=body)
    err = only(load(write_rule(text)), "E203")
    line = text.splitlines()[err.line - 1]
    assert line[err.col - 1:].startswith("getenv")


def test_schema_errors_have_codes(write_rule):
    text = rule_yaml(id="Bad_ID", mechanism="cooling", severity="urgent", view="itemz",
                     body=GOOD_BODY + "colour: red\n")
    rs = load(write_rule(text))
    codes = {e.code for e in rs.errors}
    assert {"E108", "E110", "E111", "E106"} <= codes
    assert "did you mean" not in only(rs, "E111").message  # lists the choices instead
    assert "critical" in only(rs, "E111").message


def test_missing_field_and_unknown_view(write_rule):
    text = rule_yaml(view="itemz", body=GOOD_BODY).replace("rationale: Tests need rules.\n", "")
    rs = load(write_rule(text))
    assert "rationale" in only(rs, "E105").message
    text2 = rule_yaml(view="itemz", body=GOOD_BODY)
    err = only(load(write_rule(text2, name="v")), "E112")
    assert "did you mean items?" in err.message


def test_message_placeholders_and_format_specs(write_rule):
    body = GOOD_BODY.replace('zh: "单价 {unit_price_cny:,.0f}"', 'zh: "单价 {unit_prce}"')
    body = body.replace('en: "unit price {unit_price_cny:,.0f}"', 'en: "name {item_name:,.0f}"')
    rs = load(write_rule(rule_yaml(body=body)))
    assert "{unit_prce}" in only(rs, "E103").message
    assert "item_name" in only(rs, "E113").message


def test_placeholder_not_in_evidence_is_a_warning_only(write_rule):
    body = GOOD_BODY.replace('en: "unit price {unit_price_cny:,.0f}"',
                             'en: "unit price {unit_price_cny:,.0f} x {quantity}"')
    rs = load(write_rule(rule_yaml(body=body)))
    assert rs.rules and only(rs, "W103")


def test_test_rows_are_checked(write_rule):
    body = GOOD_BODY.replace("row: {unit_price_cny: 9000000}", "row: {unit_prce: 9000000}")
    body = body.replace("row: {unit_price_cny: 100}", "row: {unit_price_cny: -5}")
    rs = load(write_rule(rule_yaml(body=body)))
    assert "did you mean unit_price_cny?" in only(rs, "E301").message
    assert "unit_price_cny" in only(rs, "E302").message


def test_lint_warnings_do_not_stop_loading(write_rule):
    body = GOOD_BODY.split("tests:")[0]
    rs = load(write_rule(rule_yaml(body=body), name="other-name"))
    assert [r.id for r in rs.rules] == ["test-rule"]
    assert only(rs, "W101") and only(rs, "W104")


def test_errors_of_the_whole_pack_are_collected_in_one_pass(write_rule):
    a = write_rule(rule_yaml(id="rule-a", body=GOOD_BODY.replace("ref_high_cny", "ref_hi")),
                   name="rule-a")
    write_rule(rule_yaml(id="rule-b", body=GOOD_BODY.replace(
        "unit_price_cny > 2", "read_csv('/etc/passwd') IS NULL AND unit_price_cny > 2")),
        name="rule-b")
    c = write_rule(rule_yaml(id="rule-c", body=GOOD_BODY), name="rule-c")
    rs = load(a.parent)
    assert {(Path(e.path).name, e.code) for e in rs.errors} == {("rule-a.yaml", "E103"),
                                                               ("rule-b.yaml", "E203")}
    assert rs.invalid_ids == {"rule-a", "rule-b"}
    assert [r.id for r in rs.rules] == ["rule-c"]
    assert c.exists()


def test_duplicate_ids_across_the_pack(write_rule):
    write_rule(rule_yaml(id="same-id", body=GOOD_BODY), name="same-id", folder="pack/a")
    write_rule(rule_yaml(id="same-id", body=GOOD_BODY), name="same-id", folder="pack/b")
    rs = load(write_rule(rule_yaml(id="x", body=GOOD_BODY), name="x").parent.parent)
    err = only(rs, "E109")
    assert err.line == 1 and err.col == 5 and "pack/a/same-id.yaml" in err.message
    assert "same-id" in rs.invalid_ids and [r.id for r in rs.rules] == ["x"]


def test_reference_and_models_files_are_not_rules(write_rule, tmp_path):
    write_rule(rule_yaml(body=GOOD_BODY))
    (tmp_path / "pack" / "reference").mkdir()
    (tmp_path / "pack" / "reference" / "accelerators.yaml").write_text("x: 1\n")
    (tmp_path / "pack" / "models.yaml").write_text("x: 1\n")
    rs = load(tmp_path / "pack")
    assert rs.files == 1 and not rs.errors


# --- resolve_rule_dirs --------------------------------------------------------------------

def _pack(root: Path, folders: list[str]) -> Path:
    for f in folders:
        (root / f).mkdir(parents=True)
        (root / f / f"{f}-rule.yaml").write_text("id: x\n")
    (root / "reference").mkdir()
    return root


def test_resolve_rule_dirs(tmp_path):
    bundled = _pack(tmp_path / "rules", ["cooling", "duplicate_line"])
    assert [d.name for d in resolve_rule_dirs(bundled, [])] == ["cooling", "duplicate_line"]
    mine = _pack(tmp_path / "mine", ["cooling"]) / "cooling"
    got = resolve_rule_dirs(bundled, [mine])
    assert got == [mine, bundled / "duplicate_line"]  # same name: replaced
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "r.yaml").write_text("id: r\n")
    assert resolve_rule_dirs(bundled, [extra])[-1] == extra  # other name: added
    whole = _pack(tmp_path / "whole", ["a", "b"])
    assert resolve_rule_dirs(bundled, [whole]) == [whole / "a", whole / "b"]  # a pack replaces


def test_every_code_is_registered_and_documented():
    import re

    from iccaudit.detect.rules.ruleset import CODES

    root = Path(__file__).resolve().parents[2]
    source = " ".join(p.read_text() for p in (root / "src/iccaudit/detect").glob("*.py"))
    used = set(re.findall(r'"([EW]\d{3})"', source))
    assert used <= set(CODES), used - set(CODES)
    doc = (root / "docs" / "rules.md").read_text(encoding="utf-8")
    missing = [c for c in CODES if f"`{c}`" not in doc]
    assert not missing, f"codes not documented in docs/rules.md: {missing}"


def test_a_100_kb_expression_in_a_rule_file_is_refused_at_its_key(write_rule):
    huge = "quantity > 0" + " OR quantity > 0" * 6500  # ≈ 104 kB, under the file limit
    text = rule_yaml(body=GOOD_BODY.replace("where: unit_price_cny > 2 * ref_high_cny",
                                            f"where: {huge}"))
    err = only(load(write_rule(text)), "E210")
    assert err.line == text.splitlines().index(f"where: {huge}") + 1 and err.col == 8


def test_caret_is_placed_under_wide_characters():
    from iccaudit.detect.rules.ruleset import RuleError

    err = RuleError("r.yaml", 3, 12, "E103", "unknown column 'x'",
                    source_line="  zh: 单价高 {x}")
    source, caret = err.render().splitlines()[1:]
    # "  zh: 单价高 " is 11 characters but 14 terminal cells (3 wide characters)
    assert caret.index("^") == 4 + 14
    assert source.endswith("{x}")


def test_one_file_with_many_problems_reports_every_one_with_its_code_and_line(write_rule):
    """Structure errors do not hide the others: a missing field, a bad severity, an unknown
    column in where, a bad message format, a repeated test name and a test row with an unknown
    column are all reported in one load, each at its own line."""
    text = """\
id: many-problems
title: Many problems
mechanism: price_outlier
severity: extreme
status: stable
description: d
where: unit_prce_cny > 2 * ref_high_cny
message:
  zh: "单价 {unit_price_cny:%%}"
  en: "unit price {unit_price_cny:,.0f}"
evidence: [unit_price_cny]
tests:
  - name: high
    expect: hit
    row: {unit_price_cny: 9000000, not_a_column: 1}
  - name: high
    expect: miss
    row: {unit_price_cny: 100}
"""
    rs = load(write_rule(text, name="many-problems"))
    codes = {e.code: e for e in rs.errors}
    # rationale missing (E105), severity unknown (E111), column unknown (E103), format (E113),
    # test row column (E301), test name twice (E303)
    assert {"E105", "E111", "E103", "E113", "E301", "E303"} <= set(codes), [
        str(e) for e in rs.errors]
    assert codes["E111"].line == 4 and codes["E103"].line == 7 and codes["E113"].line == 9
    assert codes["E301"].line == 15 and codes["E303"].line == 16
    assert "rationale" in codes["E105"].message and "unit_prce_cny" in codes["E103"].message
    assert rs.rules == [] and rs.invalid_ids == {"many-problems"}


def test_every_code_belongs_to_exactly_the_validators_that_report_it():
    from iccaudit.detect.rules.errors import CODES
    from iccaudit.detect.rules.validators import VALIDATORS

    claimed = {code for v in VALIDATORS for code in v.codes}
    assert claimed <= set(CODES), claimed - set(CODES)
    # each validator is a small class with a docstring naming what it checks
    assert all(type(v).__doc__ for v in VALIDATORS) and len(VALIDATORS) >= 8
