"""``hypnoscope review`` is secure by default: another Host is refused, a request without
the token (or with a wrong one) is refused, no file outside the app's static folder is
reachable (``../``, encoded ``%2e%2e/``, absolute paths), large bodies are refused, and the
server binds 127.0.0.1 only. The refused requests never reach the review session."""

from __future__ import annotations

import asyncio
import http.client
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from hypnoscope.review.app import (  # noqa: E402
    HOST,
    MAX_BODY_BYTES,
    bind_socket,
    create_app,
    new_token,
    server_config,
)

TOKEN = "s3cret-token"
PORT = 8765
SECRET = "TOP-SECRET-CONTENT"


class StubSession:
    """Stands in for a ReviewSession: records every call that reaches it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def night(self):
        self.calls.append("night")
        return {"n_epochs": 1}

    def page(self, epoch, n, filters):
        self.calls.append("page")
        return {"epoch": epoch}

    def score(self, epoch, stage, scorer):
        self.calls.append("score")
        return {"epoch": epoch, "stage": stage}

    def undo(self):
        self.calls.append("undo")
        return {}

    def set_position(self, epoch):
        self.calls.append("position")
        return {"position": epoch}

    def summary(self):
        self.calls.append("summary")
        return {}


@pytest.fixture
def app(tmp_path):
    """The app over a stub session, its static folder inside ``tmp_path/pkg`` and a secret
    file beside that folder and above it."""
    static = tmp_path / "pkg" / "static"
    static.mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>review</title>")
    (static / "review.js").write_text("console.log('ok');")
    (tmp_path / "pkg" / "secret.txt").write_text(SECRET)
    (tmp_path / "secret.txt").write_text(SECRET)
    (static / ".hidden").write_text(SECRET)
    session = StubSession()
    return create_app(session, TOKEN, port=PORT, static_dir=static), session


def _client(app, host=f"127.0.0.1:{PORT}"):
    return TestClient(app, base_url=f"http://{host}")


def test_another_host_is_refused(app):
    asgi, session = app
    for host in ("evil.example:8765", "127.0.0.1:9999", "localhost.evil.example:8765",
                 "10.0.0.1:8765"):
        r = _client(asgi, host).get("/api/night", params={"token": TOKEN})
        assert r.status_code == 403 and "host" in r.json()["detail"], host
        assert _client(asgi, host).get("/static/index.html").status_code == 403
    assert session.calls == []
    for host in (f"127.0.0.1:{PORT}", f"localhost:{PORT}"):
        assert _client(asgi, host).get("/api/night", params={"token": TOKEN}).status_code == 200
    assert session.calls == ["night", "night"]


def test_the_token_is_required(app):
    asgi, session = app
    c = _client(asgi)
    for method, path in (("GET", "/"), ("GET", "/api/night"), ("GET", "/api/page/0"),
                         ("GET", "/api/summary"), ("POST", "/api/undo")):
        for extra in ({}, {"params": {"token": "wrong"}}, {"headers": {"X-Review-Token": ""}},
                      {"headers": {"X-Review-Token": TOKEN[:-1]}}):
            r = c.request(method, path, **extra)
            assert r.status_code == 403 and "token" in r.json()["detail"], (path, extra)
    r = c.post("/api/score", json={"epoch": 0, "stage": "W", "scorer": "x"})
    assert r.status_code == 403
    assert session.calls == []  # nothing reached the session
    assert c.get("/", params={"token": TOKEN}).status_code == 200
    assert c.get("/api/night", headers={"X-Review-Token": TOKEN}).status_code == 200
    assert c.post("/api/score", headers={"X-Review-Token": TOKEN},
                  json={"epoch": 0, "stage": "W"}).status_code == 200
    assert session.calls == ["night", "score"]


def _raw_get(asgi, path: str, query: bytes = b"") -> tuple[int, bytes]:
    """A GET with ``path`` exactly as given (no client-side normalisation of ``..``)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": query, "root_path": "",
             "headers": [(b"host", f"127.0.0.1:{PORT}".encode())],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", PORT)}
    out: dict = {"body": b""}
    asked: list[int] = []

    async def receive():
        if not asked:
            asked.append(1)
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # no disconnect: the app ends this wait itself

    async def send(msg):
        if msg["type"] == "http.response.start":
            out["status"] = msg["status"]
        elif msg["type"] == "http.response.body":
            out["body"] += msg.get("body", b"")

    asyncio.run(asgi(scope, receive, send))
    return out["status"], out["body"]


def test_no_file_outside_the_static_folder(app):
    asgi, _ = app
    c = _client(asgi)
    assert c.get("/static/review.js").status_code == 200  # static files need no token
    # decoded paths as the server sees them: literal ../, absolute, hidden, folders
    for path in ("/static/../secret.txt", "/static/../../secret.txt", "/static/..",
                 "/static//etc/passwd", "/static/%2e%2e/secret.txt", "/static/.hidden",
                 "/static/sub/../../secret.txt", "/static/..\\secret.txt", "/static/"):
        for query in (b"", f"token={TOKEN}".encode()):
            status, body = _raw_get(asgi, path, query)
            assert status in (403, 404) and SECRET.encode() not in body, (path, status)
    # encoded forms through a real client (the server decodes them)
    for path in ("/static/%2e%2e/secret.txt", "/static/%2e%2e%2fsecret.txt",
                 "/static/..%2f..%2fsecret.txt", "/static/%2E%2E/%2E%2E/secret.txt",
                 "/static/%2fetc%2fpasswd"):
        r = c.get(path, params={"token": TOKEN})
        assert r.status_code in (403, 404) and SECRET not in r.text, path


def test_a_large_body_is_refused(app):
    asgi, session = app
    c = _client(asgi)
    big = b'{"epoch": 0, "stage": "W", "pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    r = c.post("/api/score", headers={"X-Review-Token": TOKEN,
                                      "content-type": "application/json"}, content=big)
    assert r.status_code == 413

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(5):
            yield b"x" * (MAX_BODY_BYTES // 4)

    r = c.post("/api/position", headers={"X-Review-Token": TOKEN}, content=chunks())
    assert r.status_code == 413
    assert session.calls == []


def test_security_headers(app):
    asgi, _ = app
    r = _client(asgi).get("/api/night", params={"token": TOKEN})
    assert r.headers["referrer-policy"] == "no-referrer"  # the token is in the URL
    assert r.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in r.headers["content-security-policy"]


def test_the_server_binds_127_0_0_1_only():
    from hypnoscope.cli import build_parser

    assert HOST == "127.0.0.1"
    sock = bind_socket(0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1" and sock.getsockname()[1] > 0
        config = server_config(object(), sock)
        assert config.host == "127.0.0.1" and config.port == sock.getsockname()[1]
    finally:
        sock.close()
    review = build_parser()._subparsers._group_actions[0].choices["review"]
    assert "--host" not in review._option_string_actions  # no way to listen elsewhere
    tokens = {new_token() for _ in range(20)}
    assert len(tokens) == 20 and min(len(t) for t in tokens) >= 32


def test_a_live_server():
    """The same checks against uvicorn listening on a real socket (the package's static
    folder)."""
    import uvicorn

    session = StubSession()
    sock = bind_socket(0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(server_config(create_app(session, TOKEN, port=port), sock))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)

        def get(path, host=f"127.0.0.1:{port}"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.putrequest("GET", path, skip_host=True)
            conn.putheader("Host", host)
            conn.endheaders()
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            return resp.status, body

        assert get(f"/api/night?token={TOKEN}")[0] == 200
        assert get("/api/night")[0] == 403
        assert get(f"/api/night?token={TOKEN}", host=f"evil.example:{port}")[0] == 403
        for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/../session.py"):
            status, body = get(path + f"?token={TOKEN}")
            assert status == 404 and b"import" not in body, path
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert session.calls == ["night"]
