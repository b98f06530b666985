"""``iccaudit review``: the page is served to 127.0.0.1 only with its token, and a verdict
typed on the keyboard in a real headless Chromium lands in the database.

The browser test is skipped only when no Chromium is installed AND $CI is not set (as the
report's browser test, whose way of driving Chromium it shares).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from iccaudit.review.server import ReviewApp, make_server
from tests.report.test_report_browser import CHROMIUM, FLAGS


@pytest.fixture
def served(db) -> Iterator[tuple[ReviewApp, str]]:
    server, app, url = make_server(db, "chen")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, url
    finally:
        server.shutdown()
        server.server_close()
        app.close()


def ask(app: ReviewApp, sql: str) -> list[tuple]:
    """A query on the server's own connection (the process holds the file open)."""
    with app.lock:
        return app.con.execute(sql).fetchall()


def get(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
        ) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_served_on_loopback_with_a_token(served):
    _app, url = served
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?t=[\w-]{30,}", url)
    base = url.split("?")[0]
    assert get(base)[0] == 403
    assert get(base + "?t=wrong")[0] == 403
    assert get(base + "api/findings")[0] == 403
    assert get(url.replace("127.0.0.1", "localhost"))[0] == 200
    status, body = get(url)
    assert status == 200 and b"iccaudit review" in body
    # a page elsewhere that rebinds its name to 127.0.0.1 sends its own Host: refused
    assert get(url, headers={"Host": "evil.example:80"})[0] == 403
    status, body = get(url.replace("/?", "/api/findings?"))
    data = json.loads(body)
    money = [f["est_excess_cny"] for f in data["findings"] if f["est_excess_cny"] is not None]
    assert data["reviewer"] == "chen" and money == sorted(money, reverse=True) and money
    first = data["findings"][0]
    assert first["fingerprint"] and json.loads(first["raw"])  # the source row, as read


def test_bad_verdicts_are_refused(served, db):
    app, url = served
    api = url.replace("/?", "/api/verdict?")
    fp = ask(app, "SELECT fingerprint FROM latest_findings LIMIT 1")[0][0]
    js = {"Content-Type": "application/json"}
    assert get(api, data=json.dumps({"fingerprint": fp, "status": "maybe"}).encode(),
               headers=js)[0] == 400
    assert get(api, data=json.dumps({"fingerprint": "nope", "status": "confirmed"}).encode(),
               headers=js)[0] == 400
    assert get(api, data=b"fingerprint=x", headers={"Content-Type":
                                                    "application/x-www-form-urlencoded"})[0] == 415
    assert get(api.split("?")[0], data=json.dumps({"fingerprint": fp, "status": "confirmed"})
               .encode(), headers=js)[0] == 403
    assert ask(app, "SELECT count(*) FROM verdicts") == [(0,)]


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="chromium not installed (apt-get install chromium)")
def test_a_verdict_typed_in_the_browser_is_recorded(served, db, tmp_path: Path):
    assert CHROMIUM is not None, "CI is set but chromium is not installed"
    app, url = served
    order = [r[0] for r in ask(app, "SELECT fingerprint FROM latest_findings ORDER BY "
                                     "est_excess_cny DESC NULLS LAST, score DESC, fingerprint")]
    # j: the next finding by money at risk; d: dismissed, with the reason typed before it
    link = url + "#keys=jd&reason=" + quote("declared refurbished, contract allows it")
    proc = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=15000", "--dump-dom", link],
        capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = re.search(r'<body data-state="([^"]*)"', proc.stdout)
    assert state and state.group(1) == f"recorded:{order[1]}:dismissed", proc.stdout[-1500:]
    assert ask(app, "SELECT fingerprint, status, reason, reviewer, source FROM verdicts") == [
        (order[1], "dismissed", "declared refurbished, contract allows it", "chen",
         "review page")]
    # the page moved on to the next finding and shows the verdict in the list
    assert re.search(rf'class="[^"]*v-dismissed[^"]*" data-fingerprint="{order[1]}"',
                     proc.stdout)


def test_the_command_serves_until_stopped_and_holds_the_database(db, tmp_path):
    import signal
    import sys

    from tests.review.conftest import iccaudit

    xlsx = tmp_path / "f.xlsx"
    iccaudit("export", "--db", str(db), "--xlsx", str(xlsx))
    exe = Path(sys.executable).with_name("iccaudit")
    proc = subprocess.Popen([str(exe), "review", "--db", str(db), "--no-open", "--reviewer",
                             "chen"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/\?t=[\w-]+", line)
        assert url, line
        assert get(url.group(0))[0] == 200
        # meanwhile an import is refused at once, in one line
        busy = iccaudit("verdicts", "import", str(xlsx), "--db", str(db), check=False)
        assert busy.returncode == 1 and "in use by another iccaudit process" in busy.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err
