"""The enrich SQL files: placeholders filled safely, constants only from the reference book."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

from iccaudit.enrich import ReferenceError, build_sandbox, load_reference
from iccaudit.enrich import views as enrich_views
from iccaudit.enrich.reference import ENRICH_PARAMS, ParamsFile
from iccaudit.enrich.sqlfiles import SqlTemplateError, expand, literal, source
from tests.enrich.conftest import REFERENCE_DIR, frame, line

SQL = Path(enrich_views.__file__).parent / "sql"
FILES = sorted(p.relative_to(SQL).with_suffix("").as_posix() for p in SQL.rglob("*.sql"))

#: Numbers a SQL file may hold outside placeholders, comments and strings: 0 and 1 (empty,
#: one, the first group of a regular expression, 1 - x) anywhere; others where a reason says
#: why they are no threshold.
ALLOWED_EVERYWHERE = {"0", "1", "0.0"}
ALLOWED = {
    ("tender_compute", "1000.0"): "TFLOPS per PFLOPS: a unit, not a threshold",
    ("_tender_load", "1000"): "W per kW: a unit",
    ("_text_class", "100"): "per cent",
    ("_text_capacity", "2"): "a regular expression's group number",
    ("_text_capacity", "3"): "a regular expression's group number",
    ("macros/figures", "100"): "per cent",
}


def code(sql: str) -> str:
    """SQL without its string literals and comments."""
    return re.sub(r"'(?:[^']|'')*'|--[^\n]*", " ", sql)


def numeric_literals(sql: str) -> list[str]:
    """The numeric literals of SQL text, outside strings, comments and placeholders."""
    bare = re.sub(r"\$[a-z_][a-z0-9_]*|\{[a-z_][a-z0-9_]*\}", " ", code(sql))
    return re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", bare)


def test_the_literal_check_sees_numbers_and_only_numbers():
    sql = ("SELECT a_90d, x > 90, y BETWEEN 1 AND 2.5, '30', $days -- 7 days\n"
           "FROM t WHERE {slot} AND z < 0.65")
    assert numeric_literals(sql) == ["90", "1", "2.5", "0.65"]


@pytest.mark.parametrize("name", FILES)
def test_no_threshold_is_written_in_the_sql(name):
    found = [n for n in numeric_literals(source(name))
             if n not in ALLOWED_EVERYWHERE and (name, n) not in ALLOWED]
    assert not found, (f"sql/{name}.sql holds {found}: put the constant in "
                       "rules/reference/params.yaml (ENRICH_PARAMS) and write $its_key")


def test_every_file_is_built_and_every_parameter_read(reference):
    texts = {name: code(source(name)) for name in FILES}
    tables = {n for n in FILES if not n.startswith("macros/")}
    assert tables == set(enrich_views.STEPS) | set(enrich_views.PUBLIC)
    used = {m for t in texts.values() for m in re.findall(r"@([a-z_]+)\(", t)}
    assert {n for n in FILES if n.startswith("macros/")} == {f"macros/{m}" for m in used}
    named = {p for t in texts.values() for p in re.findall(r"\$([a-z_][a-z0-9_]*)", t)}
    # reference_cards_per_server prices the module references when the reference tables are
    # made (enrich/prices.py), not in the SQL
    assert set(ENRICH_PARAMS) - {"reference_cards_per_server"} <= named
    assert named <= set(enrich_views.parameters(reference))


def test_statements_start_with_what_they_make(reference):
    """The sandbox names each table once built by the statement's first words."""
    statements = enrich_views.view_statements(reference, "src", ["item_id"])
    made = [re.match(r"CREATE (?:TEMP )?(?:TABLE|VIEW) (\w+)", s) for s in statements
            if not s.startswith(("DROP ", "SET ", "RESET "))]
    assert [m.group(1) for m in made if m] == [*enrich_views.STEPS, *enrich_views.PUBLIC]
    assert all(m for m in made)
    # the internal steps' tables are temporary (all dropped once items is built), the
    # public ones are not (a kept sandbox file holds them)
    temp = {m.group(1) for m in made if m and m.group(0).startswith("CREATE TEMP TABLE")}
    assert temp and all(t.startswith("_") for t in temp)
    assert not temp & set(enrich_views.PUBLIC)
    assert not any(re.search(r"\$[a-z_]|\{[a-z_]+\}|@[a-z_]+\(", code(s))
                   for s in statements)


@pytest.mark.parametrize(("value", "sql"), [
    ("it's \\d{1,2}$", "'it''s \\d{1,2}$'"),
    (8, "8"),
    (1.4826, "1.4826"),
    (True, "true"),
    (dt.date(2023, 10, 25), "DATE '2023-10-25'"),
    (("张", "o'k"), "'张', 'o''k'"),
])
def test_literals(value, sql):
    assert literal(value) == sql


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {"a": 1}, ("a", 1)])
def test_values_without_a_literal_are_refused(value):
    with pytest.raises(SqlTemplateError):
        literal(value)


def test_placeholders_outside_strings_and_comments_in_one_pass():
    text = "SELECT '$x {y} @z(' AS a, -- $z {y}\n {s}, $p"
    out = expand(text, {"p": "$p {s}"}, {"s": "$p"})
    assert out == "SELECT '$x {y} @z(' AS a, -- $z {y}\n $p, '$p {s}'"


@pytest.mark.parametrize(("text", "message"), [
    ("SELECT $nope", r"parameter \$nope"),
    ("SELECT {nope}", r"slot \{nope\}"),
    ("SELECT @says(a, b)", "takes 3 argument"),
    ("SELECT @says(lower(a)", "unclosed"),
])
def test_placeholders_without_a_value_are_errors(text, message):
    with pytest.raises(SqlTemplateError, match=message):
        expand(text, {}, {})


def test_macro_arguments_keep_their_parentheses_commas_and_strings(reference):
    params = enrich_views.parameters(reference)
    out = expand("@says(concat_ws(' | ', model, spec), $shell, $shell_not)", params, {})
    assert out.count("concat_ws(' | ', model, spec)") == 1
    assert literal(params["shell"]) in out and literal(params["shell_not"]) in out
    assert "{text}" not in out


def _copy_reference(tmp_path: Path) -> Path:
    target = tmp_path / "reference"
    shutil.copytree(REFERENCE_DIR, target)
    return target


def test_a_missing_parameter_is_refused_by_name(tmp_path):
    ref_dir = _copy_reference(tmp_path)
    path = ref_dir / "params.yaml"
    kept = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next(i for i, t in enumerate(kept) if "key: peer_window_days" in t)
    path.write_text("".join(kept[:start] + kept[start + 2:]), encoding="utf-8")
    with pytest.raises(ReferenceError) as exc:
        load_reference(ref_dir)
    assert str(exc.value) == (f"{path}: missing parameter(s) peer_window_days "
                              "(the enrich views read them)")


def test_a_reference_without_the_parameters_builds_no_sandbox(reference):
    bare = reference.model_copy(update={"params": ParamsFile()})
    with pytest.raises(ReferenceError, match="missing parameter.*peer_window_days"):
        build_sandbox(frame([line("GPU服务器", 1)]), REFERENCE_DIR, reference=bare)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("{key: serial_min_chars, value: 4,", "{key: serial_min_chars, value: 4.5,",
     "serial_min_chars must be a whole number"),
    ("{key: robust_z_mad_scale, value: 1.4826,", "{key: robust_z_mad_scale, value: wide,",
     "robust_z_mad_scale must be a number"),
])
def test_a_parameter_of_the_wrong_kind_is_located(tmp_path, old, new, message):
    ref_dir = _copy_reference(tmp_path)
    path = ref_dir / "params.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    line_no = next(i for i, t in enumerate(text.splitlines(), 1) if old in t)
    with pytest.raises(ReferenceError) as exc:
        load_reference(ref_dir)
    assert str(exc.value).startswith(f"{path}:{line_no}: ") and message in str(exc.value)
