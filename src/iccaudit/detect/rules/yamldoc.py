"""Safe YAML with locations: a rule file read into data plus the line and column of every key.

YAML is read with ``SafeLoader`` only; tags (``!!python/object``), anchors and aliases are
refused outright (aliases are the billion-laughs vector and rules never need them), nesting is
bounded, and files over :data:`MAX_FILE_BYTES` are not read at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from iccaudit.core import yamlsafe
from iccaudit.detect.rules.errors import RuleError

#: The largest rule file read.
MAX_FILE_BYTES = 256_000


@dataclass
class YamlDoc:
    path: str
    text: str
    data: Any
    # key path -> (key line, key col, value node); 0-based marks
    marks: dict[tuple, tuple[int, int, Any]]

    def line_text(self, line: int) -> str | None:
        lines = self.text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else None

    def at(self, path: tuple, *, value: bool = False) -> tuple[int, int]:
        """1-based location of a key (or its value), falling back to the nearest parent."""
        while path and path not in self.marks:
            path = path[:-1]
        if not path:
            return 1, 1
        kline, kcol, node = self.marks[path]
        if value and node is not None:
            return node.start_mark.line + 1, node.start_mark.column + 1
        return kline + 1, kcol + 1

    def expr_at(self, path: tuple, offset: int, token: str | None) -> tuple[int, int]:
        """Location of a character offset inside an expression value."""
        if path not in self.marks or self.marks[path][2] is None:
            return self.at(path)
        node = self.marks[path][2]
        expr = node.value if isinstance(node.value, str) else ""
        start, end = node.start_mark, node.end_mark
        raw = self.text[start.index:end.index]
        offset = max(0, min(offset, len(expr)))
        if node.style in (None, "'", '"') and "\n" not in raw:
            col = start.column + (1 if node.style else 0) + offset
            return start.line + 1, col + 1
        if node.style == "|":
            before = expr[:offset]
            eline = before.count("\n")
            ecol = offset - (before.rfind("\n") + 1)
            content = self.text.splitlines()[start.line + 1:]
            body = next((c for c in content if c.strip()), "")
            indent = len(body) - len(body.lstrip(" "))
            return start.line + 2 + eline, indent + ecol + 1
        # folded or multi-line flow scalars: find the token's occurrence in the raw text
        if token:
            k = expr[:offset].count(token)
            pos = -1
            for _ in range(k + 1):
                pos = raw.find(token, pos + 1)
                if pos < 0:
                    break
            if pos >= 0:
                absolute = start.index + pos
                line = self.text.count("\n", 0, absolute)
                col = absolute - (self.text.rfind("\n", 0, absolute) + 1)
                return line + 1, col + 1
        return start.line + 1, start.column + 1


def _walk_marks(node: Any, path: tuple, marks: dict, dupes: list) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                dupes.append((key_node.start_mark, key))
            seen.add(key)
            marks[path + (key,)] = (key_node.start_mark.line, key_node.start_mark.column,
                                    value_node)
            _walk_marks(value_node, path + (key,), marks, dupes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            marks[path + (i,)] = (item.start_mark.line, item.start_mark.column, item)
            _walk_marks(item, path + (i,), marks, dupes)


#: Nesting of YAML lists and mappings a rule file may use (a rule needs about five).
MAX_YAML_DEPTH = 32


#: libyaml's parser when PyYAML was built with it (several times faster), else PyYAML's own;
#: both report the same marks, and only safe types are ever constructed.
_SafeLoader = yamlsafe.SafeLoader


def read_yaml(path: Path, shown: str) -> tuple[YamlDoc | None, list[RuleError]]:
    def err(code: str, message: str, line: int = 1, col: int = 1, text: str | None = None
            ) -> tuple[None, list[RuleError]]:
        src = None
        if text is not None:
            lines = text.splitlines()
            src = lines[line - 1] if 0 < line <= len(lines) else None
        return None, [RuleError(shown, line, col, code, message, source_line=src)]

    try:
        size = path.stat().st_size
    except OSError as exc:
        return err("E101", f"cannot read the file: {exc.strerror or exc}")
    if size > MAX_FILE_BYTES:
        return err("E101", f"file is {size:,} bytes, over the limit of {MAX_FILE_BYTES:,} "
                           "for one rule")
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
        text = raw.decode("utf-8-sig")
    except OSError as exc:
        return err("E101", f"cannot read the file: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        return err("E101", f"not UTF-8 (byte {exc.start})")

    # First pass over the event stream: refuse tags, anchors and aliases before anything is
    # constructed, so neither object construction nor alias expansion can happen.
    depth = 0  # the composer below recurses per level: refuse deep nesting here, iteratively
    try:
        for event in yaml.parse(text, Loader=_SafeLoader):
            mark = event.start_mark
            where = (mark.line + 1, mark.column + 1, text) if mark else (1, 1, text)
            depth += isinstance(event, yaml.CollectionStartEvent)
            depth -= isinstance(event, yaml.CollectionEndEvent)
            if depth > MAX_YAML_DEPTH:
                return err("E100", f"YAML nested deeper than {MAX_YAML_DEPTH} levels", *where)
            if isinstance(event, yaml.AliasEvent):
                return err("E102", f"YAML aliases (*{event.anchor}) are not allowed in rules",
                           *where)
            if anchor := getattr(event, "anchor", None):
                return err("E102", f"YAML anchors (&{anchor}) are not allowed in rules",
                           *where)
            tag = getattr(event, "tag", None)
            if tag and not isinstance(event, yaml.DocumentStartEvent):
                shown_tag = tag.replace("tag:yaml.org,2002:", "!!")
                return err("E102", f"YAML tags ({shown_tag}) are not allowed in rules", *where)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if mark is None:
            return err("E100", f"YAML syntax error: {problem}")
        return err("E100", f"YAML syntax error: {problem}", mark.line + 1, mark.column + 1, text)

    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return err("E104", "the file is empty; a rule file holds one YAML mapping")
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return err("E104", f"one rule per file: {problem}", line, col, text)
    finally:
        loader.dispose()
    if not isinstance(node, yaml.MappingNode):
        return err("E104", "a rule file holds one YAML mapping (id: ..., title: ...)", 1, 1,
                   text)
    marks: dict[tuple, tuple[int, int, Any]] = {}
    dupes: list = []
    _walk_marks(node, (), marks, dupes)
    doc = YamlDoc(shown, text, data, marks)
    if dupes:
        mark, key = dupes[0]
        return err("E115", f"key {key!r} appears twice", mark.line + 1, mark.column + 1, text)
    return doc, []
