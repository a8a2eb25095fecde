"""The review web app: FastAPI endpoints over a :class:`~hypnoscope.review.session.ReviewSession`,
served by uvicorn on 127.0.0.1 only.

Secure by default (the contract is ``notes/review_api.md``): every request but the
static files needs the session's random token (query ``token`` or header
``X-Review-Token``), the ``Host`` header must name 127.0.0.1 or localhost (a guard against
DNS rebinding), request bodies over :data:`MAX_BODY_BYTES` are refused, static files are
served by name from the package's ``review/static/`` folder only, and no endpoint takes a
file path from the client.
"""

from __future__ import annotations

import json
import mimetypes
import re
import secrets
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Query
from fastapi.responses import FileResponse

from hypnoscope.review.session import ReviewSession

#: A JSON object request body.
JsonBody = Annotated[dict[str, Any], Body()]

#: Largest request body accepted (bytes).
MAX_BODY_BYTES = 64 * 1024
#: The only address the server binds to.
HOST = "127.0.0.1"
#: Host names a request may name in its Host header.
ALLOWED_HOSTNAMES = ("127.0.0.1", "localhost")
#: The folder of the app's static files.
STATIC_DIR = Path(__file__).parent / "static"
_STATIC_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
#: Headers of every response: no caching, no sniffing, no referrer (the token is in the
#: URL), no framing, scripts and styles from the app only.
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": ("default-src 'self'; img-src 'self' data:; "
                                "style-src 'self' 'unsafe-inline'; script-src 'self'; "
                                "connect-src 'self'; frame-ancestors 'none'; "
                                "base-uri 'none'; form-action 'none'"),
}

Send = Callable[[dict[str, Any]], Awaitable[None]]


def new_token() -> str:
    """A random URL-safe token (24 bytes of entropy)."""
    return secrets.token_urlsafe(24)


def _host_ok(host: str, port: int | None) -> bool:
    """Whether a Host header names this server: 127.0.0.1 or localhost, on ``port`` when
    given."""
    name, _, p = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    if not name:
        name, p = host, ""
    if name.lower() not in ALLOWED_HOSTNAMES:
        return False
    return port is None or p == str(port)


class _Guard:
    """ASGI middleware: Host check, token check, body size limit, security headers."""

    def __init__(self, app: Any, token: str, port: int | None, max_body: int) -> None:
        self.app, self.token, self.port, self.max_body = app, token, port, max_body

    @staticmethod
    async def _refuse(send: Send, status: int, text: str) -> None:
        body = json.dumps({"detail": text}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                *[(k.encode(), v.encode()) for k, v in
                                  SECURITY_HEADERS.items()]]})
        await send({"type": "http.response.body", "body": body})

    def _token_ok(self, scope: dict[str, Any], headers: dict[bytes, bytes]) -> bool:
        from urllib.parse import parse_qs

        given = headers.get(b"x-review-token", b"").decode("latin-1")
        if not given:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (query.get("token") or [""])[0]
        return bool(given) and secrets.compare_digest(given.encode(), self.token.encode())

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets
            return
        headers = dict(scope.get("headers") or [])
        if not _host_ok(headers.get(b"host", b"").decode("latin-1"), self.port):
            await self._refuse(send, 403, "forbidden host: open the URL that hypnoscope "
                                          "review printed (http://127.0.0.1:PORT/?token=...)")
            return
        if not scope["path"].startswith("/static/") and not self._token_ok(scope, headers):
            await self._refuse(send, 403, "missing or wrong token: open the URL that "
                                          "hypnoscope review printed")
            return
        try:
            length = int(headers.get(b"content-length", b"0"))
        except ValueError:
            length = self.max_body + 1
        if length > self.max_body:
            await self._refuse(send, 413, f"request body over {self.max_body} bytes")
            return
        body, more = b"", True
        while more:  # read it all (it is small), counting what arrives
            msg = await receive()
            if msg["type"] != "http.request":
                return
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
            if len(body) > self.max_body:
                await self._refuse(send, 413, f"request body over {self.max_body} bytes")
                return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def send_with_headers(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                have = {k.lower() for k, _ in msg.get("headers", [])}
                msg = {**msg, "headers": [*msg.get("headers", []),
                                          *[(k.encode(), v.encode()) for k, v in
                                            SECURITY_HEADERS.items() if k.encode() not in have]]}
            await send(msg)

        await self.app(scope, replay, send_with_headers)


def create_app(session: ReviewSession, token: str, port: int | None = None,
               static_dir: Path = STATIC_DIR, max_body: int = MAX_BODY_BYTES) -> Any:
    """The review app (an ASGI app: FastAPI behind the security guard).

    Parameters
    ----------
    session : ReviewSession
        The opened review.
    token : str
        The token every request but ``/static/*`` must carry.
    port : int, optional
        The port the Host header must name (any port of 127.0.0.1/localhost when None).
    static_dir : path
        Folder of ``index.html`` and its files (default the package's ``review/static``).
    max_body : int
        Largest request body in bytes (:data:`MAX_BODY_BYTES`).
    """
    api = FastAPI(title="hypnoscope review", docs_url=None, redoc_url=None, openapi_url=None)
    static_root = Path(static_dir).resolve()

    def call(fn: Callable[..., Any], *args: Any, missing: int = 400) -> Any:
        """``fn(*args)``; an epoch out of range is ``missing`` (404 for a page), a
        conflict (nothing to undo) 409, any other bad value 400."""
        try:
            return fn(*args)
        except IndexError as exc:
            raise HTTPException(missing, str(exc)) from None
        except LookupError as exc:
            raise HTTPException(409, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None

    def static_file(name: str) -> FileResponse:
        if not _STATIC_NAME.match(name):  # one plain name: no folder, no "..", no "/"
            raise HTTPException(404, "not found")
        path = (static_root / name).resolve()
        if path.parent != static_root or not path.is_file():
            raise HTTPException(404, "not found")
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=kind)

    @api.get("/")
    def index() -> FileResponse:
        return static_file("index.html")

    @api.get("/static/{name:path}")
    def static(name: str) -> FileResponse:
        return static_file(name)

    @api.get("/api/night")
    def night() -> dict[str, Any]:
        return session.night()

    @api.get("/api/page/{epoch}")
    def page(epoch: int, n: int = 1,
             filters: Annotated[str | None, Query()] = None) -> dict[str, Any]:
        try:
            parsed = json.loads(filters) if filters else None
        except ValueError:
            raise HTTPException(400, f"filters: not JSON: {filters[:80]!r}") from None
        return call(session.page, epoch, n, parsed, missing=404)

    @api.post("/api/score")
    def score(body: JsonBody) -> dict[str, Any]:
        return call(session.score, body.get("epoch"), body.get("stage"), body.get("scorer"))

    @api.post("/api/undo")
    def undo() -> dict[str, Any]:
        return call(session.undo)

    @api.post("/api/position")
    def position(body: JsonBody) -> dict[str, Any]:
        return call(session.set_position, body.get("epoch"))

    @api.get("/api/summary")
    def summary() -> dict[str, Any]:
        return session.summary()

    return _Guard(api, token, port, max_body)


def bind_socket(port: int = 0) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (``port`` 0: a free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, int(port)))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {HOST}:{port}: {exc.strerror}; choose "
                                 "another --port (0 = a free one)") from None
    sock.listen(128)
    return sock


def server_config(app: Any, sock: socket.socket) -> Any:
    """The uvicorn configuration of :func:`serve`: host fixed to 127.0.0.1, the port of
    ``sock``, no access log."""
    import uvicorn

    port = sock.getsockname()[1]
    return uvicorn.Config(app, host=HOST, port=port, log_level="warning", access_log=False,
                          lifespan="off", server_header=False)


def review_url(port: int, token: str) -> str:
    """The URL to open: ``http://127.0.0.1:PORT/?token=TOKEN``."""
    return f"http://{HOST}:{port}/?token={token}"


def serve(session: ReviewSession, port: int = 0, token: str | None = None,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``session`` on 127.0.0.1 until interrupted (Ctrl-C stops it cleanly).

    ``port`` 0 takes a free port; ``on_ready`` is called with the URL (token included)
    once the server listens. Returns when the server has shut down (Ctrl-C, SIGTERM)."""
    import uvicorn

    token = token or new_token()
    sock = bind_socket(port)
    port = sock.getsockname()[1]
    config = server_config(create_app(session, token, port=port), sock)
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(review_url(port, token))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shut down on Ctrl-C, then raised it again: done
        pass
    finally:
        sock.close()
