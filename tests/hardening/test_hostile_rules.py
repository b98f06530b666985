"""Hostile rule files through `iccaudit rules validate DIR` and `iccaudit score --rules DIR`.

tests/detect/ checks these constructs against the loader and compiler one by one; here every
one goes through the real CLI, each in a rule pack folder of its own, and must be refused at
validation with its code at path:line:col and exit code 3, before any file is read. The
constructs tests/detect/ does not have (network reads, glob, deep YAML and SQL nesting, a
statement in `applies`, format-string attribute access) are added.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.detect.conftest import rule_yaml
from tests.detect.test_commands import GOOD

from . import corpus as C
from .conftest import invoke

WHERE = "where: total_diff_cny > greatest(1, 0.005 * total_cny)"
APPLIES = "applies: total_cny IS NOT NULL"


def _where(expr: str) -> str:
    return rule_yaml("hostile-rule", body=GOOD.replace(WHERE, f"where: {expr}"))


def _applies(expr: str) -> str:
    return rule_yaml("hostile-rule", body=GOOD.replace(APPLIES, f"applies: {expr}"))


_LAUGHS = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] + [
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]"
    for i in range(9)
]

#: name -> (rule file text, error code, line of the error or None for "any line")
CASES: dict[str, tuple[str, str, int | None]] = {
    "python-tag": (rule_yaml("hostile-rule", body=GOOD)
                   + "extra: !!python/object/apply:os.system ['touch /tmp/pwned']\n", "E102", 23),
    "billion-laughs": ("\n".join(_LAUGHS) + "\n", "E102", 1),
    "ten-megabytes": (rule_yaml("hostile-rule", body=GOOD) + "# " + "x" * 10_485_760 + "\n",
                      "E101", 1),
    "deep-yaml": (rule_yaml("hostile-rule", body=GOOD) + "extra: " + "[" * 20000
                  + "]" * 20000 + "\n", "E100", 23),
    "read-csv": (_where("read_csv('/etc/passwd') IS NOT NULL"), "E203", 10),
    "read-parquet-http": (_where("read_parquet('http://evil.example/x.parquet') IS NULL"),
                          "E203", 10),
    "subquery-over-http": (_where("quantity > (SELECT count(*) FROM "
                                  "read_parquet('https://evil.example/x.parquet'))"), "E204", 10),
    "httpfs-read": (_where("read_csv_auto('s3://bucket/a.csv') IS NULL"), "E203", 10),
    "glob": (_where("len(glob('/etc/*')) > 0"), "E203", 10),
    "read-text": (_where("read_text('/etc/passwd') IS NULL"), "E203", 10),
    "install-httpfs": (_where("INSTALL httpfs"), "E201", 10),
    "load-httpfs": (_applies("\"total_cny > 0; LOAD httpfs\""), "E201", 11),
    "pragma": (_applies("PRAGMA enable_profiling"), "E201", 11),
    "set": (_where("SET enable_external_access = true"), "E201", 10),
    "attach": (_where("ATTACH '/tmp/x.duckdb' AS x"), "E201", 10),
    "deep-parentheses": (_where("(" * 3000 + "quantity" + ")" * 3000 + " > 1"), "E211", 10),
    "deep-calls": (_where("abs(" * 1500 + "quantity" + ")" * 1500 + " > 1"), "E211", 10),
    "format-attribute": (rule_yaml("hostile-rule", body=GOOD.replace(
        'en: "difference {total_diff_cny:,.0f}"',
        'en: "{total_diff_cny.__class__.__mro__}"')), "E113", 14),
}


def _pack(root: Path, name: str, text: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "hostile-rule.yaml").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("name", sorted(CASES))
def test_rules_validate_refuses_with_code_and_location(tmp_path, name):
    text, code, line = CASES[name]
    folder = _pack(tmp_path, name, text)
    out = invoke(["rules", "validate", str(folder)])
    assert out.code == 3, out.text
    assert "Traceback" not in out.text
    found = re.search(rf"(\S+hostile-rule\.yaml):(\d+):(\d+): {code} ", out.text)
    assert found, out.text[:2000]
    assert found.group(1).endswith(f"{name}/hostile-rule.yaml")
    if line is not None:
        assert int(found.group(2)) == line, found.group(0)
    assert int(found.group(3)) >= 1
    assert "0 valid rule(s)" in out.text


def test_score_with_a_hostile_pack_stops_before_reading_files(tmp_path):
    folder = tmp_path / "pack"
    folder.mkdir()
    for name in ("python-tag", "read-parquet-http", "pragma"):
        (folder / f"{name}.yaml").write_text(CASES[name][0].replace(
            "id: hostile-rule", f"id: {name}"), encoding="utf-8")
    tender = tmp_path / "t.csv"
    tender.write_bytes(C.csv_bytes([C.HEADER, C.ROW]))
    db = tmp_path / "f.duckdb"
    out = invoke(["score", str(tender), "--db", str(db), "--rules", str(folder), "--no-models"])
    assert out.code == 3 and "Traceback" not in out.text, out.text
    assert "3 rule error(s)" in out.err
    for code in ("E102", "E203", "E201"):
        assert re.search(rf"pack/\S+\.yaml:\d+:\d+: {code} ", out.err), out.err
    assert not db.exists()
