"""Packaging hook: ship the rule pack (top-level ``rules/``) inside the wheel.

The pack is data that rule authors edit in the checkout; an installed (non-editable) iccaudit
finds it as ``iccaudit/_rules`` (see :func:`iccaudit.core.paths.bundled_rules_dir`).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithRules(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "rules"
        target = Path(self.build_lib) / "iccaudit" / "_rules"
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target,
                            ignore=shutil.ignore_patterns("conftest.py", "__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithRules})
