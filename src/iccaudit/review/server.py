"""``iccaudit review``: the latest run's findings on a local page, verdicts by keyboard.

Standard library only (``http.server``). The server listens on 127.0.0.1 alone, on a port the
system picks, and answers only requests that carry its secret token (``?t=...``, made fresh
at each start with :mod:`secrets`) and name it as their host (a web page elsewhere cannot
reach it through DNS rebinding). It holds the database open for its lifetime: an import or
a run meanwhile fails at once with "in use", never half-written. Verdicts go through
:func:`iccaudit.store.verdicts.record_one`, one transaction each.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from iccaudit import store
from iccaudit.store.verdicts import VerdictError, record_one

#: The findings the page walks: the latest run's, money at risk first, with the source row.
FINDINGS_SQL = """
SELECT f.fingerprint, f.finding_id, f.group_id, f.detector, f.kind, f.mechanism, f.severity,
       f.score, f.est_excess_cny, f.title, f.title_en, f.message, f.message_en, f.evidence,
       f.source_file, f.source_sheet, f.source_row, f.tender_id, f.line_no, f.supplier,
       f.item_name, f.brand, f.model, f.spec, f.quantity, f.unit, f.unit_price_cny,
       f.total_cny, f.verdict, f.verdict_reason, f.verdict_by, f.dismissed, li.raw
FROM latest_findings f
LEFT JOIN line_items li ON li.run_id = f.run_id AND li.item_id = f.item_id
ORDER BY f.est_excess_cny DESC NULLS LAST, f.score DESC, f.fingerprint
"""
MAX_BODY = 64 * 1024


class ReviewApp:
    """The server's state: the open database, the token, the reviewer."""

    def __init__(self, db: str | Path, reviewer: str) -> None:
        if not reviewer.strip():
            raise store.StoreError("say who reviews (--reviewer NAME)")
        self.db = Path(db)
        self.reviewer = reviewer.strip()
        self.token = secrets.token_urlsafe(24)
        self.nonce = secrets.token_urlsafe(12)
        self.lock = threading.Lock()  # one DuckDB connection, one request at a time on it
        self.port = 0  # set once the server is bound
        if not self.db.exists():
            raise store.StoreError(f"{db}: no such database")
        self.con = store.connect(self.db)
        try:
            if store.schema_version(self.con) is None:
                raise store.StoreError(f"{db}: not an iccaudit database")
            store.ensure_schema(self.con)
            if store.latest_run_id(self.con) is None:
                raise store.StoreError(f"{db}: no complete run to review")
        except BaseException:
            self.con.close()
            raise

    def close(self) -> None:
        with self.lock:
            self.con.close()

    def findings(self) -> dict[str, Any]:
        with self.lock:
            frame = self.con.execute(FINDINGS_SQL).df()
            run_id = store.latest_run_id(self.con)
        frame = frame.astype(object).where(frame.notna(), None)
        return {"run_id": run_id, "reviewer": self.reviewer,
                "findings": frame.to_dict("records")}

    def record(self, body: dict[str, Any]) -> dict[str, Any]:
        fingerprint, status = body.get("fingerprint"), body.get("status")
        reason = body.get("reason")
        if not isinstance(fingerprint, str) or not isinstance(status, str) or not (
                reason is None or isinstance(reason, str)):
            raise VerdictError(["give fingerprint and status as text"])
        with self.lock:
            vid = record_one(self.con, fingerprint, status, (reason or "").strip() or None,
                             reviewer=self.reviewer, source="review page")
        return {"ok": True, "verdict_id": vid, "fingerprint": fingerprint, "status": status}

    def page(self) -> bytes:
        html = files("iccaudit.review").joinpath("page.html").read_text(encoding="utf-8")
        return html.replace("{{nonce}}", self.nonce).encode("utf-8")


def handler_for(app: ReviewApp) -> type[BaseHTTPRequestHandler]:
    """The request handler class bound to ``app``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "iccaudit-review"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            return  # the token is in every URL: nothing is logged

        def _allowed(self) -> bool:
            port = app.port
            host = self.headers.get("Host", "")
            if host not in (f"127.0.0.1:{port}", f"localhost:{port}"):
                self._send(403, {"error": "wrong host"})
                return False
            token = parse_qs(urlsplit(self.path).query).get("t", [""])[0]
            if not hmac.compare_digest(token.encode(), app.token.encode()):
                self._send(403, {"error": "missing or wrong token"})
                return False
            return True

        def _send(self, code: int, payload: dict[str, Any] | bytes,
                  kind: str = "application/json; charset=utf-8") -> None:
            body = payload if isinstance(payload, bytes) else json.dumps(
                payload, ensure_ascii=False, default=str).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Content-Security-Policy",
                             f"default-src 'none'; script-src 'nonce-{app.nonce}'; "
                             "style-src 'unsafe-inline'; connect-src 'self'; "
                             "frame-ancestors 'none'")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if not self._allowed():
                return
            path = urlsplit(self.path).path
            if path == "/":
                self._send(200, app.page(), "text/html; charset=utf-8")
            elif path == "/api/findings":
                self._send(200, app.findings())
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            if not self._allowed():
                return
            if urlsplit(self.path).path != "/api/verdict":
                self._send(404, {"error": "not found"})
                return
            if not self.headers.get("Content-Type", "").startswith("application/json"):
                self._send(415, {"error": "send JSON"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                self._send(413, {"error": "body empty or too large"})
                return
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError as exc:
                self._send(400, {"error": f"bad JSON: {exc}"})
                return
            if not isinstance(body, dict):
                self._send(400, {"error": "send a JSON object"})
                return
            try:
                self._send(200, app.record(body))
            except VerdictError as exc:
                self._send(400, {"error": "; ".join(exc.problems)})

    return Handler


def make_server(db: str | Path, reviewer: str) -> tuple[ThreadingHTTPServer, ReviewApp, str]:
    """The server (bound, not yet serving), its app and the page's URL with the token."""
    app = ReviewApp(db, reviewer)
    try:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(app))
    except BaseException:
        app.close()
        raise
    server.daemon_threads = True
    app.port = int(server.server_address[1])
    url = f"http://127.0.0.1:{app.port}/?t={app.token}"
    return server, app, url


def serve(db: str | Path, *, reviewer: str, open_browser: bool = True,
          announce: Callable[[str], None] = print) -> None:
    """Serve until interrupted (Ctrl-C), then close the database."""
    server, app, url = make_server(db, reviewer)
    try:
        announce(url)
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        server.serve_forever()
    finally:
        server.server_close()
        app.close()
