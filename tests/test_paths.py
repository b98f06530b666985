"""Where the rule pack is found: $ICCAUDIT_RULES, the checkout, or the copy in the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from iccaudit.core import paths

ROOT = Path(__file__).resolve().parents[1]


def test_checkout_pack_is_used_in_an_editable_install(monkeypatch):
    monkeypatch.delenv("ICCAUDIT_RULES", raising=False)
    assert paths.bundled_rules_dir() == ROOT / "rules"
    assert paths.reference_dir() == ROOT / "rules" / "reference"


def test_environment_variable_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("ICCAUDIT_RULES", str(tmp_path))
    assert paths.bundled_rules_dir() == tmp_path


def test_installed_package_falls_back_to_its_own_copy(monkeypatch, tmp_path):
    monkeypatch.delenv("ICCAUDIT_RULES", raising=False)
    monkeypatch.setattr(paths, "_REPO_ROOT", tmp_path)  # no rules/ beside the package
    assert paths.bundled_rules_dir() == paths._PACKAGED_RULES


@pytest.mark.slow
def test_wheel_carries_the_rule_pack(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("iccaudit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.split("iccaudit/_rules/", 1)[1] for n in names if "iccaudit/_rules/" in n}
    in_checkout = {str(p.relative_to(ROOT / "rules")) for p in (ROOT / "rules").rglob("*.yaml")}
    assert in_checkout and in_checkout <= shipped
    assert not any(n.endswith("conftest.py") for n in names)
