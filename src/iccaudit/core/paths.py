"""Where the bundled rule pack and configuration live."""

from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[3]


_PACKAGED_RULES = Path(__file__).resolve().parents[1] / "_rules"


def bundled_rules_dir() -> Path:
    """The rule pack: $ICCAUDIT_RULES, else ``rules/`` of the source checkout (editable
    install), else the copy shipped inside the installed package (``iccaudit/_rules``)."""
    env = os.environ.get("ICCAUDIT_RULES")
    if env:
        return Path(env)
    checkout = _REPO_ROOT / "rules"
    if (checkout / "reference").is_dir():
        return checkout
    return _PACKAGED_RULES


def reference_dir(rules_dir: Path | None = None) -> Path:
    """The reference price book that belongs to a rule pack: ``<rules>/reference``."""
    return (rules_dir or bundled_rules_dir()) / "reference"


def lexicon_dir(rules_dir: Path | None = None) -> Path:
    """The recognition lexicon that belongs to a rule pack: ``<rules>/lexicon``."""
    return (rules_dir or bundled_rules_dir()) / "lexicon"


def models_config() -> Path:
    """Default detector settings."""
    return bundled_rules_dir() / "models.yaml"
