"""The recognition lexicon: ``rules/lexicon/*.yaml``, the words the enrich views recognise.

A file holds any of four sections: ``concepts`` (a list; each concept has an ``id`` and its
``terms``, ``aliases``, ``patterns``, ``exclusions`` and ``examples``), ``normalise``
(regional variants and rewrites, see :mod:`iccaudit.enrich.textnorm`), ``units`` (unit
spellings and factors) and ``model`` (the learned fallback's settings). docs/rules.md
describes the format.

:func:`iccaudit.enrich.lexicon_check.load_lexicon` reads the folder, checks every pattern (with DuckDB's own RE2), every
concept id (unique, the required ones present, each of the kind the views read) and every
example, and raises :class:`LexiconError` with all problems, each located (file, line,
reason): nothing is scored with a half-loaded lexicon. The views read the lexicon only
through :meth:`Lexicon.sql_params`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from iccaudit.core import yamlsafe
from iccaudit.enrich.reference import Loc, _line_index, _line_of
from iccaudit.enrich.textnorm import Rewrites, normalise_list

#: A pattern that matches nothing (RE2): the exclusion of a concept without exclusions.
NEVER = r"[^\x00-\x{10FFFF}]"
KINDS = ("pattern", "capture", "words", "numbers")
_RE2_SPECIAL = set(r"\.^$|?*+()[]{}")
_CONCEPT_FIELDS = {"id", "kind", "category", "description", "terms", "aliases", "patterns",
                   "exclusions", "examples", "words", "numbers"}
_SECTIONS = {"concepts", "normalise", "units", "model"}

#: The concepts the enrich views read, by kind: a lexicon without one of them is refused.
REQUIRED: dict[str, str] = {
    **{c: "pattern" for c in (
        "retrofit", "service", "head", "module", "server", "rack_noun", "network", "card",
        "liquid", "storage", "rack", "gpu_hint", "gpu_evidence", "domestic", "refurbished",
        "used_condition", "used_text", "new_condition", "new_text", "shell", "assembled",
        "cold_plate", "immersion", "capacity_total", "other_goods")},
    "servers_count": "capture", "cards_plain": "capture", "cards_chinese": "numbers",
    "card_vendor": "words", "card_noun": "words", "card_noun_lead": "words",
    "card_units": "words", "lump_units": "words",
    "vat_excluded": "pattern", "vat_included": "pattern",
    **{c: "capture" for c in (
        "storage_usable", "storage_raw", "storage_product", "storage_any", "speed_x_ports",
        "speed_ports", "ports_x_speed", "ports_speed", "ports_of_speed", "ports_only",
        "power_kw", "power_kva", "power_mw", "vat_rate", "vat_rate_before")},
}


#: The (groups) a capture concept's pattern has, as the views read them (1 when not listed).
CAPTURE_GROUPS: dict[str, int] = {
    "storage_usable": 2, "storage_raw": 2, "storage_product": 3, "storage_any": 2,
    "speed_x_ports": 2, "speed_ports": 2, "ports_x_speed": 2, "ports_speed": 2,
    "ports_of_speed": 2,
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a lexicon file."""

    path: str
    line: int
    reason: str

    def render(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


class LexiconError(ValueError):
    """The lexicon cannot be used; :attr:`problems` lists every located problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.line, p.reason))
        shown = "\n".join(p.render() for p in self.problems[:20])
        more = f"\n(+{len(self.problems) - 20} more)" if len(self.problems) > 20 else ""
        super().__init__(f"invalid lexicon ({len(self.problems)} problem(s)):\n{shown}{more}")


def re2_escape(text: str) -> str:
    return "".join("\\" + c if c in _RE2_SPECIAL else c for c in text)


def alias_pattern(alias: str) -> str:
    """An alias as RE2: literal text, any run of space/-/_ a flexible separator."""
    parts = [p for p in alias.replace("-", " ").replace("_", " ").split() if p]
    return r"[\s\-_]*".join(re2_escape(p) for p in parts)


@dataclass(frozen=True)
class Example:
    text: str
    normalised: str
    should_match: bool
    line: int


@dataclass(frozen=True)
class Concept:
    """One concept; ``pattern`` is what it matches, ``exclusion`` what is removed first."""

    id: str
    kind: str
    path: str
    line: int
    description: str = ""
    category: str | None = None
    pattern: str = NEVER
    exclusion: str = NEVER
    sources: tuple[tuple[str, int], ...] = ()  # (pattern, line) as compiled, for checks
    words: tuple[str, ...] = ()
    numbers: tuple[tuple[str, int], ...] = ()
    examples: tuple[Example, ...] = ()


@dataclass(frozen=True)
class Lexicon:
    """A loaded, checked lexicon."""

    concepts: Mapping[str, Concept]
    variants: tuple[tuple[str, str], ...] = ()
    rewrites: tuple[tuple[str, str], ...] = ()
    name_rewrites: tuple[tuple[str, str], ...] = ()
    units: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    model: Mapping[str, Any] = field(default_factory=dict)
    keep: str = ""
    folder: Path | None = None
    sha256: str = ""

    @property
    def text_rewrites(self) -> Rewrites:
        """Replacements every text goes through after :func:`textnorm.fold`."""
        return self.variants + self.rewrites

    def sql_params(self) -> dict[str, str | int | tuple[str, ...]]:
        """``$name`` values: each pattern concept as ``name`` and ``name_not`` (its
        exclusion), each capture concept as ``name``, each word list as a tuple."""
        out: dict[str, str | int | tuple[str, ...]] = {}
        for c in self.concepts.values():
            if c.kind == "pattern":
                out[c.id], out[c.id + "_not"] = c.pattern, c.exclusion
            elif c.kind == "capture":
                out[c.id] = c.pattern
            elif c.kind == "words":
                out[c.id] = c.words
        return out

    def words(self, concept: str) -> tuple[str, ...]:
        return self.concepts[concept].words

    def numbers(self, concept: str) -> tuple[tuple[str, int], ...]:
        return self.concepts[concept].numbers


def lexicon_files(folder: Path) -> list[Path]:
    """The files of a lexicon folder that make it up (YAML, and the model's CSV)."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix in (".yaml", ".yml", ".csv"))


class Reader:
    """Collects the sections of every file, and the problems found on the way
    (:func:`iccaudit.enrich.lexicon_check.load_lexicon` drives it)."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.concepts: dict[str, Concept] = {}
        self.raw: list[tuple[str, dict[Loc, int], dict[str, Any]]] = []
        self.normalise: dict[str, list[tuple[str, str]]] = {}
        self.units: dict[str, dict[str, float]] = {}
        self.model: dict[str, Any] = {}
        self.norm_examples: list[tuple[str, int, str, str]] = []
        self.keep = ""

    def _problem(self, path: str, line: int, reason: str) -> None:
        self.problems.append(Problem(path, line, reason))

    def read(self, path: Path) -> None:
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
            node, data = yamlsafe.load_with_node(text)
        except (OSError, UnicodeDecodeError) as exc:
            self._problem(where, 1, f"cannot read: {exc}")
            return
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            self._problem(where, mark.line + 1 if mark else 1,
                          f"invalid YAML: {exc.problem or exc.context}")
            return
        index = _line_index(node) if node is not None else {}
        if not isinstance(data, dict):
            self._problem(where, 1, "expected a mapping with concepts, normalise, units or model")
            return
        for key in data:
            if key not in _SECTIONS:
                self._problem(where, _line_of(index, (key,)),
                              f"unknown section {key!r} (expected one of {sorted(_SECTIONS)})")
        for i, entry in enumerate(data.get("concepts") or []):
            self._concept(where, index, i, entry)
        self._normalise(where, index, data.get("normalise"))
        for group, table in (data.get("units") or {}).items():
            if not isinstance(table, dict) or not all(
                    isinstance(v, int | float) and v > 0 for v in table.values()):
                self._problem(where, _line_of(index, ("units", group)),
                              f"units.{group}: expected spelling: positive factor")
                continue
            self.units[str(group)] = {str(k).lower(): float(v) for k, v in table.items()}
        if isinstance(data.get("model"), dict):
            self.model.update(data["model"])

    def _normalise(self, where: str, index: dict[Loc, int], section: Any) -> None:
        if section is None:
            return
        for name, pairs in section.items():
            if name == "examples":
                for j, ex in enumerate(pairs or []):
                    line = _line_of(index, ("normalise", name, j))
                    if isinstance(ex, dict) and set(ex) == {"text", "normalised"}:
                        self.norm_examples.append(
                            (where, line, str(ex["text"]), str(ex["normalised"])))
                    else:
                        self._problem(where, line,
                                      "normalise.examples: expected {text: ..., normalised: ...}")
                continue
            if name == "keep":
                if not (isinstance(pairs, list) and all(isinstance(c, str) and len(c) == 1
                                                        for c in pairs)):
                    self._problem(where, _line_of(index, ("normalise", name)),
                                  "normalise.keep: expected a list of single characters")
                else:
                    self.keep += "".join(pairs)
                continue
            if name not in ("variants", "rewrites", "name_rewrites"):
                self._problem(where, _line_of(index, ("normalise", name)),
                              f"normalise: unknown list {name!r}")
                continue
            for j, pair in enumerate(pairs or []):
                if not (isinstance(pair, dict) and set(pair) == {"from", "to"}
                        and all(isinstance(v, str) for v in pair.values()) and pair["from"]):
                    self._problem(where, _line_of(index, ("normalise", name, j)),
                                  f"normalise.{name}: expected {{from: text, to: text}}")
                    continue
                self.normalise.setdefault(name, []).append((pair["from"], pair["to"]))

    def _concept(self, where: str, index: dict[Loc, int], i: int, entry: Any) -> None:
        line = _line_of(index, ("concepts", i))
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            self._problem(where, line, "a concept needs an id")
            return
        cid = entry["id"]
        for key in entry:
            if key not in _CONCEPT_FIELDS:
                self._problem(where, _line_of(index, ("concepts", i, key)),
                              f"concept {cid}: unknown field {key!r}")
        if not cid.isidentifier() or cid != cid.lower():
            self._problem(where, line, f"concept id {cid!r}: use lower_case_with_underscores")
        if cid in self.concepts:
            first = self.concepts[cid]
            self._problem(where, line,
                          f"duplicate concept {cid!r} (first defined at {first.path}:{first.line})")
            return
        kind = entry.get("kind", "pattern")
        if kind not in KINDS:
            self._problem(where, _line_of(index, ("concepts", i, "kind")),
                          f"concept {cid}: kind must be one of {', '.join(KINDS)}")
            return
        self.concepts[cid] = Concept(id=cid, kind=kind, path=where, line=line)
        self.raw.append((where, index, {"concept": (i, entry)}))

    def build(self, folder: Path, sha256: str) -> Lexicon:
        variants = tuple(self.normalise.get("variants", ()))
        rewrites = tuple(self.normalise.get("rewrites", ()))
        names = tuple(self.normalise.get("name_rewrites", ()))
        text_pairs = variants + rewrites
        concepts: dict[str, Concept] = {}
        for where, index, item in self.raw:
            if "concept" not in item:
                continue
            i, entry = item["concept"]
            concepts[entry["id"]] = _compile(self, where, index, i, entry, text_pairs, names,
                                             self.keep)
        return Lexicon(concepts=concepts, variants=variants, rewrites=rewrites,
                       name_rewrites=names, units=self.units, model=self.model, keep=self.keep,
                       folder=folder, sha256=sha256)


def _strings(reader: Reader, where: str, index: dict[Loc, int], loc: Loc,
             value: Any) -> list[tuple[str, int]]:
    """A list of strings with their lines; anything else is a problem."""
    if value is None:
        return []
    if not isinstance(value, list):
        reader._problem(where, _line_of(index, loc), f"{'.'.join(map(str, loc))}: expected a list")
        return []
    out = []
    for j, v in enumerate(value):
        if isinstance(v, str | int | float) and not isinstance(v, bool) and str(v).strip():
            out.append((str(v), _line_of(index, loc + (j,))))
        else:
            reader._problem(where, _line_of(index, loc + (j,)),
                            f"{'.'.join(map(str, loc))}.{j}: expected non-empty text")
    return out


def _compile(reader: Reader, where: str, index: dict[Loc, int], i: int, entry: dict[str, Any],
             text_pairs: Rewrites, names: Rewrites, keep: str) -> Concept:
    """A concept's patterns made from its terms, aliases and patterns, normalised like text."""
    base: Loc = ("concepts", i)
    terms = _strings(reader, where, index, base + ("terms",), entry.get("terms"))
    aliases = _strings(reader, where, index, base + ("aliases",), entry.get("aliases"))
    patterns = _strings(reader, where, index, base + ("patterns",), entry.get("patterns"))
    exclusions = _strings(reader, where, index, base + ("exclusions",), entry.get("exclusions"))
    words = _strings(reader, where, index, base + ("words",), entry.get("words"))
    kind = entry.get("kind", "pattern")
    if exclusions and kind != "pattern":
        reader._problem(where, exclusions[0][1], f"concept {entry['id']}: only a pattern "
                                                 "concept has exclusions")
    literal = normalise_list([t for t, _ in terms + aliases + words], text_pairs, keep=keep)
    n_terms, n_aliases = len(terms), len(aliases)
    sources = ([(re2_escape(t), line) for t, (_, line) in zip(literal[:n_terms], terms, strict=True)]
               + [(alias_pattern(a), line) for a, (_, line)
                  in zip(literal[n_terms:n_terms + n_aliases], aliases, strict=True)]
               + patterns)
    # longest first: RE2's leftmost-first alternation then takes the longest term
    ordered = sorted(dict.fromkeys(s for s, _ in sources), key=lambda s: (-len(s), s))
    pattern = "|".join(ordered) if kind == "pattern" else (patterns[0][0] if patterns else NEVER)
    numbers: list[tuple[str, int]] = []
    raw_numbers = entry.get("numbers") or {}
    if isinstance(raw_numbers, dict):
        keys = normalise_list([str(k) for k in raw_numbers], text_pairs, keep=keep)
        numbers = [(k, int(v)) for k, v in zip(keys, raw_numbers.values(), strict=True)
                   if isinstance(v, int)]
    examples: list[Example] = []
    for flag, key in ((True, "match"), (False, "no_match")):
        loc = base + ("examples", key)
        listed = _strings(reader, where, index, loc, (entry.get("examples") or {}).get(key))
        pairs = tuple(text_pairs) + (tuple(names) if entry.get("category") else ())
        done = normalise_list([t for t, _ in listed], pairs, keep=keep)
        examples += [Example(text=text, normalised=norm, should_match=flag, line=line)
                     for norm, (text, line) in zip(done, listed, strict=True)]
    return Concept(
        id=entry["id"], kind=kind, path=where, line=_line_of(index, base),
        description=str(entry.get("description") or ""), category=entry.get("category"),
        pattern=pattern or NEVER,
        exclusion="|".join(p for p, _ in exclusions) or NEVER,
        sources=tuple(patterns + exclusions), words=tuple(literal[n_terms + n_aliases:]),
        numbers=tuple(numbers), examples=tuple(examples))
