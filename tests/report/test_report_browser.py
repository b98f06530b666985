"""The report in a real headless Chromium: the script runs, filters, sorts; plots render.

Skipped only when no Chromium is installed AND $CI is not set; in CI it must run
(Debian package ``chromium``; ``fonts-noto-cjk`` for readable Chinese in the screenshot).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from iccaudit.report.html import write_report

CHROMIUM = next((p for p in (shutil.which(n) for n in
                             ("chromium", "chromium-browser", "google-chrome")) if p), None)

pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="chromium not installed (apt-get install chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def chromium(tmp_path: Path, url: str, *args: str) -> str:
    assert CHROMIUM is not None, "CI is set but chromium is not installed"
    profile = tmp_path / "profile"
    proc = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def report(fixture_db, tmp_path_factory) -> Path:
    return write_report(fixture_db, tmp_path_factory.mktemp("browser") / "report.html")


def shown(dom: str) -> int:
    m = re.search(r'id="shown-count">(\d+)<', dom)
    assert m, "the table script did not write the row count"
    return int(m.group(1))


def test_script_runs_and_plots_render(report, tmp_path):
    dom = chromium(tmp_path, report.as_uri(), "--dump-dom")
    assert 'data-js="ready"' in dom
    assert shown(dom) == 7  # every finding of the latest run
    assert len(re.findall(r"<svg[^>]*class=\"chart\"", dom)) == 4
    assert dom.count("<circle") >= 3 + 8  # cooling and peer points
    assert "<script>alert(" not in dom  # hostile file names stayed text in the live DOM

    shot = tmp_path / "report.png"
    chromium(tmp_path, report.as_uri(), f"--screenshot={shot}", "--window-size=1400,2000")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_filters_from_the_link(report, tmp_path):
    dom = chromium(tmp_path, report.as_uri() + "#sev=critical", "--dump-dom")
    assert shown(dom) == 2  # the machine head and GPU module of the split pair
    dom = chromium(tmp_path, report.as_uri() + "#mech=liquid_cooling_markup", "--dump-dom")
    assert shown(dom) == 2  # the rule finding and the corroborating model finding
    dom = chromium(tmp_path, report.as_uri() + "#q=pwned", "--dump-dom")
    assert shown(dom) == 1
    dom = chromium(tmp_path, report.as_uri() + "#mech=used_as_new", "--dump-dom")
    assert shown(dom) == 0  # a mechanism with no finding filters to nothing, not to all


def test_sorting_by_header(report, tmp_path):
    dom = chromium(tmp_path, report.as_uri() + "#sort=9", "--dump-dom")  # score column
    body = dom.split('id="findings"', 1)[1].split("</tbody>", 1)[0]
    scores = [float(s) for s in re.findall(r'data-v="([0-9.]+)">\1</td>', body)]
    assert scores == sorted(scores, reverse=True) and len(scores) == 7
    assert 'aria-sort="descending"' in dom


def test_scored_samples_in_the_browser(samples_db, tmp_path):
    import duckdb

    report = write_report(samples_db, tmp_path / "samples.html", lang="en")
    con = duckdb.connect(str(samples_db), read_only=True)
    try:
        (n,) = con.execute("SELECT count(*) FROM findings WHERE run_id = (SELECT run_id FROM runs "
                           "ORDER BY started_at DESC LIMIT 1)").fetchone()
    finally:
        con.close()
    dom = chromium(tmp_path, report.as_uri(), "--dump-dom")
    assert 'data-js="ready"' in dom and shown(dom) == n > 0
