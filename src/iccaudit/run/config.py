"""What produced a run: the rule files, reference book, recognition lexicon, detector
settings and column mapping it used, each with its SHA-256 and text, stored in the run's ``run_config`` rows.

:func:`snapshot` reads the files once, when the run starts; :meth:`ConfigSnapshot.frame`
gives the rows to store under the run's id. The record is the truth of the run, including
where it falls back: the sandbox loads the reference book of the bundled pack (or of
$ICCAUDIT_RULES) even when ``--rules`` replaces the rule pack, and the rows say so
(:func:`reference_dir_used` is the one place that choice is made).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from iccaudit.core import schema
from iccaudit.core.paths import bundled_rules_dir, models_config, reference_dir


def reference_dir_used() -> Path:
    """The reference book a run's sandbox loads: the bundled pack's (``$ICCAUDIT_RULES``
    honoured), whatever ``--rules`` says."""
    return reference_dir(bundled_rules_dir())


def lexicon_dir_used() -> Path:
    """The recognition lexicon a run's sandbox loads: beside the reference book it uses."""
    return reference_dir_used().parent / "lexicon"


def models_config_used(config: Path | None) -> Path:
    """The detector settings a run's models read: ``--models-config``, else the bundled
    ``models.yaml``."""
    return Path(config) if config is not None else models_config()


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
             mapping: Path | None = None) -> ConfigSnapshot:
    """Read the files a run uses: the rule files under ``rule_dirs`` (as resolved for the
    run), the reference book, the detector settings when the models run, the mapping when
    one is given. A file that cannot be read is left out (its loader reports it)."""
    from iccaudit.detect.rules.ruleset import rule_files
    from iccaudit.enrich.lexicon import lexicon_files

    found: list[tuple[str, Path, Path]] = []  # kind, root, file
    for folder in map(Path, rule_dirs):
        found += [("rules", folder.parent, f) for f in rule_files([folder])]
    ref = reference_dir_used()
    found += [("reference", ref, f) for f in sorted(ref.glob("*.y*ml"))]
    lex = lexicon_dir_used()
    if lex.is_dir():
        found += [("lexicon", lex, f) for f in lexicon_files(lex)]
    if models:
        settings = models_config_used(models_config)
        found.append(("models", settings.parent, settings))
    if mapping is not None:
        found.append(("mapping", Path(mapping).parent, Path(mapping)))
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
