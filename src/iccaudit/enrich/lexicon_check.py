"""Loading a lexicon folder, and its checks: required concepts, patterns (DuckDB's RE2), examples, settings.

Patterns are compiled by DuckDB, the engine that runs them, so a pattern Python accepts but
RE2 refuses (a look-ahead) is caught here with its file and line. The examples run in one
query, set-at-a-time, exactly as the views match: the exclusion removed, then the pattern.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import duckdb

from iccaudit.enrich.lexicon import (
    CAPTURE_GROUPS,
    NEVER,
    REQUIRED,
    Concept,
    Lexicon,
    LexiconError,
    Problem,
    Reader,
    lexicon_files,
)
from iccaudit.enrich.textnorm import normalise_list


def _re2_error(con: duckdb.DuckDBPyConnection, pattern: str) -> str | None:
    try:
        con.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
    except duckdb.Error as exc:
        return str(exc).split("Error: ", 1)[-1]
    return None


def _pattern_problems(con: duckdb.DuckDBPyConnection, c: Concept) -> list[Problem]:
    out = []
    for source, line in c.sources:
        if (err := _re2_error(con, source)) is not None:
            out.append(Problem(c.path, line, f"concept {c.id}: broken pattern {source!r}: {err}"))
    if not out and (err := _re2_error(con, c.pattern)) is not None:
        out.append(Problem(c.path, c.line, f"concept {c.id}: broken pattern: {err}"))
    if c.kind == "capture":
        try:
            groups = re.compile(c.pattern).groups
        except re.error:
            groups = 1  # RE2 syntax Python does not read; RE2 accepted it above
        want = CAPTURE_GROUPS.get(c.id, 1)
        if len(c.sources) != 1 or groups != want:
            out.append(Problem(c.path, c.line, f"concept {c.id}: a capture concept has one "
                                               f"pattern with {want} (group)s"))
    return out


def _example_problems(con: duckdb.DuckDBPyConnection, concepts: Sequence[Concept]) -> list[Problem]:
    rows = [(c.id, c.kind, c.path, e.line, e.text, e.normalised, e.should_match,
             c.pattern, c.exclusion)
            for c in concepts for e in c.examples]
    if not rows:
        return []
    # a few hundred rows, passed as one list per column in one statement (checking a
    # lexicon does not load pandas; a statement per row cost 0.13 s of every run's start)
    columns = [list(col) for col in zip(*rows, strict=True)]
    got = con.execute("""
        SELECT id, path, line, text, want,
            CASE WHEN kind = 'capture' THEN regexp_extract(norm, pattern, 1) <> ''
                 ELSE regexp_matches(regexp_replace(norm, exclusion, ' ', 'g'), pattern) END
                AS hit
        FROM (SELECT unnest(?::VARCHAR[]) AS id, unnest(?::VARCHAR[]) AS kind,
                     unnest(?::VARCHAR[]) AS path, unnest(?::BIGINT[]) AS line,
                     unnest(?::VARCHAR[]) AS text, unnest(?::VARCHAR[]) AS norm,
                     unnest(?::BOOLEAN[]) AS want, unnest(?::VARCHAR[]) AS pattern,
                     unnest(?::VARCHAR[]) AS exclusion)""", columns).fetchall()
    return [Problem(path, line, f"concept {cid}: example {text!r} "
                                + ("does not match" if want else "matches but must not"))
            for cid, path, line, text, want, hit in got if bool(hit) != bool(want)]


def check_lexicon(lex: Lexicon,
                  norm_examples: Sequence[tuple[str, int, str, str]] = ()) -> list[Problem]:
    """Every problem of a lexicon whose files were read without error."""
    folder = str(lex.folder or "lexicon")
    problems: list[Problem] = []
    for cid, kind in REQUIRED.items():
        c = lex.concepts.get(cid)
        if c is None:
            problems.append(Problem(folder, 1, f"missing concept {cid!r} (kind {kind}): the "
                                               "enrich views read it"))
        elif c.kind != kind:
            problems.append(Problem(c.path, c.line, f"concept {cid}: kind must be {kind}"))
    for c in lex.concepts.values():
        if c.kind == "words" and not c.words:
            problems.append(Problem(c.path, c.line, f"concept {c.id}: words is empty"))
        if c.kind == "numbers" and not c.numbers:
            problems.append(Problem(c.path, c.line, f"concept {c.id}: numbers is empty"))
        if c.kind == "pattern" and not c.sources and c.pattern == NEVER:
            problems.append(Problem(c.path, c.line, f"concept {c.id}: no terms or patterns"))
    con = duckdb.connect(":memory:")
    try:
        sound = []
        for c in lex.concepts.values():
            found = _pattern_problems(con, c)
            problems += found
            if not found:
                sound.append(c)
        problems += _example_problems(con, sound)  # a broken pattern cannot run its examples
    finally:
        con.close()
    if norm_examples:
        done = normalise_list([t for _, _, t, _ in norm_examples], lex.text_rewrites,
                              keep=lex.keep)
        problems += [Problem(path, line, f"normalise example {text!r} gives {got!r}, "
                                         f"not {want!r}")
                     for (path, line, text, want), got in zip(norm_examples, done, strict=True)
                     if got != want]
    power = lex.units.get("power", {})
    if "kw" not in power:
        problems.append(Problem(folder, 1, "units.power must give kw (the capacity unit)"))
    return problems


def load_lexicon(folder: Path) -> Lexicon:
    """Read and check a lexicon folder (cached while its files are unchanged)."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise LexiconError([Problem(str(folder), 1, "lexicon folder not found")])
    stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                  for p in lexicon_files(folder))
    return _load(folder, stamp)


@cache
def _load(folder: Path, stamp: tuple[tuple[str, int, int], ...]) -> Lexicon:
    reader = Reader()
    digest = hashlib.sha256()
    for path in lexicon_files(folder):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        if path.suffix != ".csv":
            reader.read(path)
    lex = reader.build(folder, digest.hexdigest())
    problems = reader.problems + check_lexicon(lex, reader.norm_examples)
    if problems:
        raise LexiconError(problems)
    return lex
