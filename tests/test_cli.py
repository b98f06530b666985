"""The CLI: every command documented with an example, fast start-up imports."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from iccaudit.cli import cli


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, cmd in sorted(group.commands.items()):
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))


ALL = list(_commands(cli))


@pytest.mark.parametrize(("path", "cmd"), ALL, ids=[" ".join(p) for p, _ in ALL])
def test_every_command_has_help_with_an_example(path, cmd):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output, f"`iccaudit {' '.join(path)}` help has no Example block"
    assert cmd.help and len(cmd.help.strip().splitlines()[0]) > 10


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys; from iccaudit.cli import cli; "
        "from click.testing import CliRunner; CliRunner().invoke(cli, ['--help']); "
        "heavy = [m for m in ('pandas', 'duckdb', 'pyod', 'numba', 'matplotlib', 'sklearn') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_missing_path_is_one_line_error(tmp_path):
    result = CliRunner().invoke(cli, ["score", str(tmp_path / "nope"), "--db",
                                      str(tmp_path / "f.duckdb")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "nope" in result.output
    assert not (tmp_path / "f.duckdb").exists()
