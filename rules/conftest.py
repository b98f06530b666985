"""pytest collects the rule pack: every rule file is validated and its in-file tests run."""

from iccaudit.detect.rules.pytest_plugin import pytest_collect_file

__all__ = ["pytest_collect_file"]
