"""What a run is asked to do (options) and what it gives back (:class:`ScoreResult`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


class RunError(Exception):
    """A run that cannot go on; the message is one line for the user."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


#: The name earlier versions gave :class:`RunError`.
PipelineError = RunError


@dataclass(kw_only=True)
class DetectOptions:
    """Which rules and models a run uses; shared by ``score`` and ``rescore``."""

    rules_dirs: list[Path] = field(default_factory=list)
    skip_invalid: bool = False
    models: bool = True
    models_config: Path | None = None
    seed: int = 0
    #: the date undated lines are priced at against the dated reference (default: each
    #: series' last point)
    price_date: dt.date | None = None


@dataclass(kw_only=True)
class ScoreOptions(DetectOptions):
    paths: list[Path]
    db: Path
    mapping: Path | None = None
    #: dated rate table converting other currencies to yuan (None: amounts keep their currency)
    rates: Path | None = None
    progress: bool = False
    #: out of core (True), in memory (False), or decided by the input size (None)
    large: bool | None = None
    #: where the out-of-core files go (default: the system's temporary folder)
    work_dir: Path | None = None


@dataclass(kw_only=True)
class RescoreOptions(DetectOptions):
    db: Path
    source_run: str | None = None


@dataclass
class ScoreResult:
    run_id: str
    db: Path
    run: dict[str, Any]
    files: pd.DataFrame
    rule_runs: pd.DataFrame
    #: one row per finding with who found it and how much (``runner.LEAN_COLUMNS``); the
    #: texts (messages, evidence) are in the database only
    findings: pd.DataFrame
    skipped: list[tuple[str, str]]
    errors: list[str]
    warnings: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    #: recognition coverage (iccaudit.enrich.facts.recognition_summary); empty if not built
    coverage: dict[str, Any] = field(default_factory=dict)


def make_run_id(started: dt.datetime, inputs: list[dict[str, str]]) -> str:
    """Sortable, readable and unique enough: UTC time plus a hash of the inputs."""
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:8]
    return started.strftime("%Y%m%dT%H%M%S%fZ") + "-" + digest
