"""Detector settings: ``rules/models.yaml``, validated by pydantic, overridable by a path.

The settings are data, like the rules: which detectors form the ensemble, how their scores are
normalised and combined, the peer groups, the features per category and the severity
calibration. Every error names the file and the offending key on one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from iccaudit.core.schema import MECHANISMS, SEVERITIES


class ModelConfigError(ValueError):
    """An invalid detector settings file; ``str()`` is one line naming the file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeatureSet(_Strict):
    """Features for one category (or the ``default`` / ``lump_sum`` entries).

    Parameters
    ----------
    price_features : list of str
        Preference list of the feature that says "priced above peers". For each line the first
        one present (not missing) is used for the above-peers gate, the ratio to the peer median
        in the message and the excess estimate.
    features : list of str
        Features given to the detectors (price features are added when not listed).
    mechanism : str
        Mechanism of the findings unless the price feature used names a more specific one.
    """

    price_features: list[str] = Field(min_length=1)
    features: list[str] = Field(default_factory=list)
    mechanism: str = "price_outlier"

    @field_validator("mechanism")
    @classmethod
    def _known_mechanism(cls, v: str) -> str:
        if v not in MECHANISMS:
            raise ValueError(f"unknown mechanism {v!r}; one of {', '.join(MECHANISMS)}")
        return v


class SeverityLevel(_Strict):
    """One row of the severity calibration: the first row whose minimums a line meets wins."""

    severity: Literal["info", "low", "medium", "high", "critical"]
    min_score: float = Field(0.0, ge=0, le=1)
    min_ratio: float = Field(0.0, ge=0)


class GroupLevel(_Strict):
    """One peer-group level: key columns of the items view (or ``item_kind``, the normalised
    item name), and whether a line whose group here is too small falls back to the next level.
    """

    keys: list[str] = Field(min_length=1)
    fallback: bool = True

    @field_validator("keys")
    @classmethod
    def _starts_with_category(cls, v: list[str]) -> list[str]:
        if v[0] != "category":
            raise ValueError("the keys of every group level start with 'category'")
        return v


class PriceLed(_Strict):
    """A line far above its like-for-like peers on price is a finding at a lower ensemble
    score: its price ratio to the peer median at least ``min_ratio``, and that many robust
    standard deviations of the group's own price spread (``min_z``) above it."""

    min_ratio: float = Field(1.5, ge=1)
    min_z: float = Field(3.5, gt=0)
    min_score: float = Field(0.5, ge=0, le=1)


class ModelSettings(_Strict):
    """Validated content of ``models.yaml``; see the file for what each key means."""

    version: Literal[1] = 1
    ensemble: list[str] = Field(min_length=1)
    combine: Literal["mean", "max"] = "mean"
    normalise: Literal["rank", "unify", "minmax"] = "rank"
    contamination: float = Field(0.05, gt=0, le=0.5)
    score_threshold: float = Field(0.9, ge=0, le=1)
    min_price_ratio: float = Field(1.3, ge=1)
    price_led: PriceLed | None = None
    min_peers: int = Field(8, ge=3)
    min_median_peers: int = Field(3, ge=1)
    group_levels: list[GroupLevel] = Field(min_length=1)
    detector_params: dict[str, dict[str, float | int | str | bool | None]] = Field(
        default_factory=dict
    )
    categories: dict[str, FeatureSet]
    severity: list[SeverityLevel] = Field(min_length=1)

    @field_validator("ensemble")
    @classmethod
    def _known_detectors(cls, v: list[str]) -> list[str]:
        from iccaudit.detect.models.detectors import DETECTORS

        unknown = [d for d in v if d not in DETECTORS]
        if unknown:
            raise ValueError(f"unknown detector(s) {unknown}; known: {', '.join(DETECTORS)}")
        if len(set(v)) != len(v):
            raise ValueError("a detector is listed twice")
        return v

    @model_validator(mode="after")
    def _check_features(self) -> ModelSettings:
        from iccaudit.detect.models.features import FEATURES

        if "default" not in self.categories:
            raise ValueError("categories: a 'default' entry is required")
        for cat, fs in self.categories.items():
            for name in [*fs.price_features, *fs.features]:
                if name not in FEATURES:
                    raise ValueError(
                        f"categories.{cat}: unknown feature {name!r}; known: {', '.join(FEATURES)}"
                    )
        for name in self.detector_params:
            if name not in self.ensemble:
                # Params of a detector that is not used are harmless, but usually a typo.
                from iccaudit.detect.models.detectors import DETECTORS

                if name not in DETECTORS:
                    raise ValueError(f"detector_params: unknown detector {name!r}")
        if self.severity[-1].min_score > 0 or self.severity[-1].min_ratio > 0:
            raise ValueError("severity: the last row must have no minimums (it catches the rest)")
        ranks = [SEVERITIES.index(s.severity) for s in self.severity]
        if ranks != sorted(ranks, reverse=True):
            raise ValueError("severity: rows go from the most to the least severe")
        return self

    def feature_set(self, category: str) -> FeatureSet:
        """Features of a category, else of ``default``."""
        return self.categories.get(category, self.categories["default"])

    @property
    def model_name(self) -> str:
        """Detector name used in findings, e.g. ``model:ecod+copod``."""
        return "model:" + "+".join(self.ensemble)


def default_config_path() -> Path:
    """The bundled ``rules/models.yaml``."""
    from iccaudit.core.paths import models_config

    return models_config()


def load_settings(config: Path | None = None) -> ModelSettings:
    """Read and validate a settings file (the bundled one when ``config`` is None)."""
    import yaml

    from iccaudit.core import yamlsafe

    path = Path(config) if config is not None else default_config_path()
    try:
        data = yamlsafe.load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelConfigError(f"{path}: cannot read detector settings: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ModelConfigError(f"{path}{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ModelConfigError(f"{path}: detector settings must be a mapping of keys")
    try:
        return ModelSettings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = err["msg"].removeprefix("Value error, ")
        raise ModelConfigError(f"{path}: {loc}: {msg}{more}") from None
