"""What produced a run: the rule files, reference book, recognition lexicon, detector
settings and column mapping it used, each with its SHA-256 and text, stored in the run's ``run_config`` rows.

:func:`snapshot` reads the files once, when the run starts; :meth:`ConfigSnapshot.frame`
gives the rows to store under the run's id. The record is the truth of the run, including
where it falls back. A whole pack given with ``--rules DIR`` (sub-folders of rules) brings
its own reference book (``DIR/reference/``) and detector settings (``DIR/models.yaml``); a
pack without them, or a single rule folder, runs with the bundled ones (or
$ICCAUDIT_RULES'), and :func:`fallbacks` says so in the run's warnings.
:func:`reference_dir_used` and :func:`models_config_used` are the one place each choice is
made.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from iccaudit.core import schema
from iccaudit.core.paths import bundled_rules_dir, lexicon_dir, models_config, reference_dir


def _packs(user_dirs: Iterable[Path]) -> list[Path]:
    """The ``--rules`` folders that are whole packs, last given first."""
    from iccaudit.detect.rules.ruleset import is_pack

    return [Path(d) for d in reversed(list(user_dirs)) if is_pack(Path(d))]


def _in_pack(user_dirs: Iterable[Path], name: str, *, folder: bool) -> Path | None:
    """``name`` (a folder, else a file) in the last ``--rules`` pack that has it, or None."""
    for pack in _packs(user_dirs):
        if (pack / name).is_dir() if folder else (pack / name).is_file():
            return pack / name
    return None


def reference_dir_used(user_dirs: Iterable[Path] = ()) -> Path:
    """The reference book a run's sandbox loads: that of the last ``--rules`` pack that has
    one, else the bundled pack's (``$ICCAUDIT_RULES`` honoured)."""
    return (_in_pack(user_dirs, "reference", folder=True)
            or reference_dir(bundled_rules_dir()))


def lexicon_dir_used(user_dirs: Iterable[Path] = ()) -> Path:
    """The recognition lexicon a run's sandbox loads: that of the last ``--rules`` pack that
    has one, else the bundled pack's."""
    return _in_pack(user_dirs, "lexicon", folder=True) or lexicon_dir(bundled_rules_dir())


def models_config_used(config: Path | None, user_dirs: Iterable[Path] = ()) -> Path:
    """The detector settings a run's models read: ``--models-config``, else the
    ``models.yaml`` of the last ``--rules`` pack that has one, else the bundled one."""
    if config is not None:
        return Path(config)
    return _in_pack(user_dirs, "models.yaml", folder=False) or models_config()


def fallbacks(user_dirs: Iterable[Path], *, models: bool, config: Path | None) -> list[str]:
    """One warning per ``--rules`` pack that brings no reference book or detector settings
    of its own, naming the bundled file the run uses instead."""
    out: list[str] = []
    packs = _packs(user_dirs)
    if packs and not (packs[0] / "reference").is_dir():
        out.append(f"rule pack {packs[0]} has no reference/ folder: using the reference book "
                   f"{reference_dir_used(packs)}")
    if packs and models and config is None and not (packs[0] / "models.yaml").is_file():
        out.append(f"rule pack {packs[0]} has no models.yaml: using the detector settings "
                   f"{models_config_used(None, packs)}")
    return out


@dataclass(frozen=True)
class ConfigFile:
    """One file a run used, as read when the run started."""

    kind: str
    root: str
    path: str
    sha256: str
    text: str


@dataclass(frozen=True)
class ConfigSnapshot:
    """The files a run used; ``pack_sha256`` identifies them all at once."""

    files: tuple[ConfigFile, ...]

    @property
    def manifest(self) -> str:
        """One line ``kind<TAB>path<TAB>sha256`` per file, sorted: where the files lie does
        not change it, their names and contents do."""
        lines = sorted(f"{f.kind}\t{f.path}\t{f.sha256}" for f in self.files)
        return "".join(line + "\n" for line in lines)

    @property
    def pack_sha256(self) -> str:
        return hashlib.sha256(self.manifest.encode()).hexdigest()

    def frame(self, run_id: str) -> pd.DataFrame:
        """The ``run_config`` rows of the run: the pack row, then one per file."""
        pack = {"run_id": run_id, "kind": "pack", "root": None, "path": "",
                "sha256": self.pack_sha256, "text": self.manifest}
        rows = [pack] + [{"run_id": run_id, "kind": f.kind, "root": f.root, "path": f.path,
                          "sha256": f.sha256, "text": f.text} for f in self.files]
        return pd.DataFrame(rows, columns=schema.columns("run_config"))


def snapshot(rule_dirs: Iterable[Path], *, models: bool, models_config: Path | None,
             mapping: Path | None = None, rates: Path | None = None,
             user_dirs: Iterable[Path] = ()) -> ConfigSnapshot:
    """Read the files a run uses: the rule files under ``rule_dirs`` (as resolved for the
    run), the reference book, the detector settings when the models run, the mapping when
    one is given. ``user_dirs``: the ``--rules`` folders as given (a pack among them brings
    its own reference and settings). A file that cannot be read is left out (its loader
    reports it)."""
    from iccaudit.detect.rules.ruleset import rule_files
    from iccaudit.enrich.lexicon import lexicon_files

    found: list[tuple[str, Path, Path]] = []  # kind, root, file
    for folder in map(Path, rule_dirs):
        found += [("rules", folder.parent, f) for f in rule_files([folder])]
    user_dirs = list(user_dirs)
    ref = reference_dir_used(user_dirs)
    found += [("reference", ref, f) for f in sorted(ref.glob("*.y*ml"))]
    lex = lexicon_dir_used(user_dirs)
    if lex.is_dir():
        found += [("lexicon", lex, f) for f in lexicon_files(lex)]
    if models:
        settings = models_config_used(models_config, user_dirs)
        found.append(("models", settings.parent, settings))
    if mapping is not None:
        found.append(("mapping", Path(mapping).parent, Path(mapping)))
    if rates is not None:
        found.append(("rates", Path(rates).parent, Path(rates)))
    files: list[ConfigFile] = []
    seen: set[tuple[str, Path]] = set()
    for kind, root, path in found:
        key = (kind, path.resolve())
        if key in seen:
            continue
        seen.add(key)
        try:
            data = path.read_bytes()
        except OSError:
            continue
        files.append(ConfigFile(
            kind=kind, root=str(root.resolve()), path=path.relative_to(root).as_posix(),
            sha256=hashlib.sha256(data).hexdigest(),
            text=data.decode("utf-8", errors="replace")))
    return ConfigSnapshot(tuple(files))
