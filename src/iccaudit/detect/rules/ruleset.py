"""The rule pack: which files are rules, the folders a run uses, and the pack loaded whole.

A rule is one YAML file. Loading never stops at the first problem: every file of the pack is
read and checked by every validator (:mod:`.validators`), and every error is collected with
its file, line, column and code, so that a rule author fixes them all in one go::

    rules/liquid_cooling_markup/cooling-per-kw-markup.yaml:7:12: E103 unknown column 'unit_prce'

The pieces: :mod:`.errors` (codes and located errors), :mod:`.yamldoc` (safe YAML with
locations), :mod:`.model` (the rule as pydantic), :mod:`.validators` (one class per concern).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from iccaudit.detect.rules.errors import CODES, RuleError
from iccaudit.detect.rules.model import ID_PATTERN, Message, Rule, RuleCase, RuleSet
from iccaudit.detect.rules.testrows import ENGINE_COLUMNS, default_row
from iccaudit.detect.rules.validators import check_file
from iccaudit.detect.rules.yamldoc import MAX_FILE_BYTES, MAX_YAML_DEPTH, read_yaml

__all__ = [
    "CODES", "ENGINE_COLUMNS", "ID_PATTERN", "MAX_FILE_BYTES", "MAX_YAML_DEPTH",
    "NON_RULE_DIRS", "NON_RULE_FILES", "RULE_SUFFIXES", "Message", "Rule", "RuleCase",
    "RuleError", "RuleSet", "default_dictionary", "default_row", "load_ruleset",
    "resolve_rule_dirs", "rule_files",
]

RULE_SUFFIXES = (".yaml", ".yml")
#: Files and folders of a pack that are not rules.
NON_RULE_DIRS = {"reference", "lexicon"}
NON_RULE_FILES = {"models.yaml", "models.yml"}


def default_dictionary() -> Mapping[str, Mapping[str, Any]]:
    """The views' data dictionary (``iccaudit.enrich.dictionary.DICTIONARY``)."""
    from iccaudit.enrich.dictionary import DICTIONARY

    return DICTIONARY


def _shown(path: Path) -> str:
    """The path as a rule author wants to see it: relative to the working directory if inside."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def rule_files(paths: Iterable[Path]) -> list[Path]:
    """Rule files under the given files or folders (skipping reference/, lexicon/ and
    models.yaml)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if (p if p.is_dir() else p.parent).name in NON_RULE_DIRS:
            continue  # the reference book and the lexicon have loaders of their own
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p).parts
                if (f.suffix in RULE_SUFFIXES and f.is_file() and f.name not in NON_RULE_FILES
                        and not NON_RULE_DIRS.intersection(rel[:-1])
                        and not any(part.startswith(".") for part in rel)):
                    out.append(f)
        else:
            out.append(p)
    seen: set[Path] = set()
    unique = []
    for f in out:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def load_ruleset(paths: Iterable[Path],
                 dictionary: Mapping[str, Mapping[str, Any]] | None = None) -> RuleSet:
    """Load every rule file under ``paths`` (files or folders), collecting all errors.

    Rules with errors are left out of ``.rules`` and their ids are in ``.invalid_ids``;
    duplicate ids are errors on every file but the first.
    """
    if dictionary is None:
        dictionary = default_dictionary()
    result = RuleSet()
    first: dict[str, str] = {}
    for path in rule_files(paths):
        shown = _shown(path)
        result.files += 1
        if not path.exists():
            result.errors.append(RuleError(shown, 1, 1, "E101", "no such file or folder"))
            continue
        rule, rule_id, errors, warnings = check_file(path, shown, dictionary)
        result.warnings.extend(warnings)
        if rule_id is not None and rule_id in first:
            line, col, src = _id_location(path)
            result.errors.append(RuleError(
                shown, line, col, "E109",
                f"rule id {rule_id!r} is already used by {first[rule_id]}", rule_id, src))
            result.invalid_ids.add(rule_id)
            continue
        if rule_id is not None:
            first[rule_id] = shown
        if errors or rule is None:
            result.errors.extend(errors)
            result.invalid_ids.add(rule_id or Path(shown).stem)
            continue
        result.rules.append(rule)
    # a duplicated id invalidates the first copy too: which one would run is not obvious
    if any(e.code == "E109" for e in result.errors):
        dup = {e.rule_id for e in result.errors if e.code == "E109"}
        result.rules = [r for r in result.rules if r.id not in dup]
    return result


def _id_location(path: Path) -> tuple[int, int, str | None]:
    """Where the ``id:`` value is (the file was already read safely once)."""
    doc, _ = read_yaml(path, str(path))
    if doc is None:
        return 1, 1, None
    line, col = doc.at(("id",), value=True)
    return line, col, doc.line_text(line)


def is_pack(folder: Path) -> bool:
    """A whole pack: it has sub-folders that hold rule files."""
    return any(
        sub.is_dir() and sub.name not in NON_RULE_DIRS and rule_files([sub])
        for sub in folder.iterdir()
    ) if folder.is_dir() else False


def resolve_rule_dirs(bundled: Path, user_dirs: list[Path]) -> list[Path]:
    """The rule folders a run uses: the bundled pack adjusted by ``--rules`` folders.

    - no user folders: the bundled pack's mechanism folders;
    - a user folder that is a whole pack (has sub-folders with rules) replaces the bundled pack;
    - a user folder named like a bundled sub-folder (``my/cooling`` vs ``rules/cooling``)
      replaces that sub-folder;
    - any other user folder (or file) is added.
    """
    bundled = Path(bundled)
    dirs: list[Path] = []
    if bundled.is_dir():
        dirs = [d for d in sorted(bundled.iterdir())
                if d.is_dir() and d.name not in NON_RULE_DIRS and not d.name.startswith(".")]
    for user in map(Path, user_dirs):
        if is_pack(user):
            dirs = [d for d in sorted(user.iterdir())
                    if d.is_dir() and d.name not in NON_RULE_DIRS and not d.name.startswith(".")]
            loose = [f for f in user.iterdir() if f.suffix in RULE_SUFFIXES
                     and f.name not in NON_RULE_FILES]
            dirs.extend(sorted(loose))
            continue
        same = [d for d in dirs if d.name == user.name and d.parent.resolve() == bundled.resolve()]
        if same:
            dirs = [user if d == same[0] else d for d in dirs]
        else:
            dirs.append(user)
    return dirs
