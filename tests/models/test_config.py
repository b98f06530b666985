"""Detector settings: the bundled file is valid; errors are one line with file and key."""

from __future__ import annotations

import pytest
import yaml

from iccaudit.core.paths import models_config
from iccaudit.detect.models import ModelConfigError, load_settings


def _write(tmp_path, data: dict | str):
    path = tmp_path / "models.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def _bundled() -> dict:
    return yaml.safe_load(models_config().read_text(encoding="utf-8"))


def test_bundled_settings_load():
    s = load_settings()
    assert s.ensemble and s.model_name == "model:" + "+".join(s.ensemble)
    assert s.group_levels[0].keys == ["category", "accel_model"]
    assert s.group_levels[0].fallback is False
    assert s.severity[-1].min_score == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ensemble": ["ecod", "lof"]}, "ensemble: unknown detector"),
        ({"min_peers": 1}, "min_peers"),
        ({"unknown_key": 1}, "unknown_key"),
        ({"categories": {"default": {"price_features": ["unit_prce"]}}}, "unknown feature"),
        ({"severity": [{"severity": "high", "min_ratio": 3}]}, "last row"),
        ({"group_levels": [{"keys": ["accel_model"]}]}, "start with 'category'"),
    ],
)
def test_invalid_settings_name_file_and_key(tmp_path, change, message):
    path = _write(tmp_path, {**_bundled(), **change})
    with pytest.raises(ModelConfigError, match=message) as err:
        load_settings(path)
    text = str(err.value)
    assert text.startswith(str(path)) and "\n" not in text


def test_yaml_syntax_error_has_line(tmp_path):
    path = _write(tmp_path, "ensemble: [copod\nmin_peers: 3\n")
    with pytest.raises(ModelConfigError, match=r"models\.yaml:\d+:\d+"):
        load_settings(path)


def test_override_file_is_used(tmp_path):
    path = _write(tmp_path, {**_bundled(), "ensemble": ["ecod"], "min_peers": 50})
    s = load_settings(path)
    assert (s.ensemble, s.min_peers) == (["ecod"], 50)
