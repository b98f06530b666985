"""The documentation is true to the code.

1. Every command example runs. The examples are
   - each line starting with ``iccaudit`` (or ``.venv/bin/iccaudit``) in a fenced ``bash``,
     ``sh`` or ``console`` block of README.md or docs/*.md, and
   - each ``iccaudit ...`` line under ``Example:`` in a command's ``--help``.
   The quickstart blocks (``<!-- quickstart-... -->``) are left to ``.ci/run``, which runs them
   verbatim; a block preceded by ``<!-- not-run: why -->`` is skipped (none is today). Each
   example runs in its own scratch folder holding a copy of ``data/samples``, the rule pack, a run of
   the samples in ``findings.duckdb`` (and a rescore of it), ``labels.csv``, and the user's files the help texts
   name (``采购清单.xlsx``, ``map.yaml``); ``/tmp/`` in an example means that folder.
2. Every source a rule cites exists: ``docs/sources.md#id`` anchors and repository paths.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"(?P<before>(?:<!--[^\n]*-->\s*\n)?)```(?:bash|sh|console)\n(?P<body>.*?)```",
                   re.DOTALL)


def doc_examples() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for m in FENCE.finditer(doc.read_text(encoding="utf-8")):
            if "quickstart" in m["before"] or "not-run" in m["before"]:
                continue
            for line in m["body"].splitlines():
                line = line.strip().removeprefix("$ ")
                if re.match(r"(\.venv/bin/)?iccaudit\s", line):
                    found.append((doc.name, line.split("  #")[0].strip()))
    return found


def help_examples() -> list[tuple[str, str]]:
    from click.testing import CliRunner

    from iccaudit.cli import cli

    commands = [[], ["score"], ["rescore"], ["samples"], ["evaluate"], ["report"], ["export"],
                ["doctor"], ["rules", "list"], ["rules", "validate"], ["rules", "test"],
                ["rules", "explain"], ["runs"], ["runs", "list"], ["runs", "diff"],
                ["lexicon"], ["lexicon", "gaps"]]
    found = []
    for cmd in commands:
        text = CliRunner().invoke(cli, [*cmd, "--help"]).output
        block = text.split("Example:", 1)[1] if "Example:" in text else ""
        for line in block.splitlines():
            if line.strip().startswith("iccaudit "):
                found.append(("iccaudit " + " ".join(cmd) + " --help", line.strip()))
            elif line.strip() and not line.startswith(" "):
                break
    return found


EXAMPLES = doc_examples()
HELP_EXAMPLES = help_examples()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("docs")
    shutil.copytree(REPO / "data" / "samples", work / "data" / "samples")
    shutil.copytree(REPO / "rules", work / "rules",
                    ignore=shutil.ignore_patterns("__pycache__", "conftest.py"))
    shutil.copy(REPO / "data" / "samples" / "labels.csv", work / "labels.csv")
    shutil.copy(next((REPO / "data" / "samples" / "tenders").glob("*.xlsx")),
                work / "采购清单.xlsx")
    (work / "map.yaml").write_text('headers:\n  "采购数量": quantity\n', encoding="utf-8")
    for line in ("iccaudit score data/samples/tenders --db findings.duckdb",
                 "iccaudit rescore --db findings.duckdb --no-models"):  # two runs to compare
        assert _run(work, line).returncode == 0, line
    return work


def _run(work: Path, line: str) -> subprocess.CompletedProcess[str]:
    line = line.replace("/tmp/", f"{work}/tmp/")
    args = shlex.split(line)
    args[0] = "iccaudit"
    proc = subprocess.run([sys.executable, "-m", "iccaudit.cli", *args[1:]], cwd=work,
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "ICCAUDIT_RULES": str(work / "rules")})
    return proc


def test_there_are_examples_to_run() -> None:
    # the extraction itself can fail: the README and the help texts do have examples
    assert len(EXAMPLES) >= 8 and any(src == "README.md" for src, _ in EXAMPLES)
    assert len(HELP_EXAMPLES) >= 12


@pytest.mark.slow
@pytest.mark.parametrize(("source", "line"), EXAMPLES + HELP_EXAMPLES,
                         ids=[f"{s}: {x[:60]}" for s, x in EXAMPLES + HELP_EXAMPLES])
def test_example_runs(scratch: Path, tmp_path: Path, source: str, line: str) -> None:
    work = tmp_path / "w"
    shutil.copytree(scratch, work)  # each example on its own copy: one may rescore or rewrite
    proc = _run(work, line)
    assert proc.returncode == 0, (
        f"{source}: `{line}` exited {proc.returncode}:\n{proc.stderr[-1500:]}")


def test_rule_ids_named_in_examples_exist() -> None:
    from iccaudit.core.paths import bundled_rules_dir
    from iccaudit.detect.rules.ruleset import load_ruleset

    ids = {r.id for r in load_ruleset([bundled_rules_dir()]).rules}
    named = {m.group(1) for _, line in EXAMPLES + HELP_EXAMPLES
             for m in [re.search(r"rules explain ([\w-]+)", line)] if m}
    assert named and named <= ids, f"examples name rules that do not exist: {named - ids}"


def test_every_cited_source_exists() -> None:
    anchors = set(re.findall(r'<a id="([\w-]+)"></a>',
                             (REPO / "docs" / "sources.md").read_text(encoding="utf-8")))
    assert {"article", "guosen", "head_module_split"} <= anchors
    cited: list[tuple[Path, str]] = []
    for f in sorted((REPO / "rules").rglob("*.yaml")):
        text = f.read_text(encoding="utf-8")
        assert "domain.md" not in text, f"{f}: cites a document outside the repository"
        cited += [(f, a) for a in re.findall(r"docs/sources\.md#([\w-]+)", text)]
        for path in re.findall(r"(rules/reference/[\w.-]+\.yaml)", text):
            assert (REPO / path).is_file(), f"{f}: cites {path}, which does not exist"
    assert cited, "no rule cites docs/sources.md"
    missing = [f"{f.relative_to(REPO)}: #{a}" for f, a in cited if a not in anchors]
    assert not missing, "citations of missing sources:\n" + "\n".join(missing)


EXAMPLE_RULE = re.compile(r"<!-- example-rule: (?P<name>[\w-]+) -->\s*\n```yaml\n(?P<body>.*?)```",
                          re.DOTALL)


def example_rules() -> list[tuple[str, str]]:
    return [(m["name"], m["body"]) for doc in DOCS
            for m in EXAMPLE_RULE.finditer(doc.read_text(encoding="utf-8"))]


def test_there_are_example_rules() -> None:
    assert [name for name, _ in example_rules()] == ["storage-per-tb"]


@pytest.mark.parametrize(("name", "body"), example_rules())
def test_example_rule_validates_and_its_tests_pass(tmp_path: Path, name: str,
                                                   body: str) -> None:
    """A rule written out in the docs is valid and its in-file tests pass, as a user would
    check it: ``iccaudit rules validate`` and ``iccaudit rules test`` on the file."""
    import yaml

    rule_id = yaml.safe_load(body)["id"]
    folder = tmp_path / "my_rules"
    folder.mkdir()
    path = folder / f"{rule_id}.yaml"
    path.write_text(body, encoding="utf-8")
    for command in ("validate", "test"):
        done = subprocess.run([sys.executable, "-m", "iccaudit.cli", "rules", command,
                               str(path)], check=False, capture_output=True, text=True,
                              cwd=tmp_path,
                              env={**os.environ, "COLUMNS": "200"})
        assert done.returncode == 0, (name, command, done.stdout, done.stderr)
    assert "0 failed" in done.stdout
