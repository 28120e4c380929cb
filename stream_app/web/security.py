"""The web server's hardening, as one aiohttp middleware (no Faust import; see docs/security.md).

- Every response carries `X-Content-Type-Options: nosniff`, a same-origin
  `Content-Security-Policy` (the live page loads its scripts, styles and vendor JS from this
  server only, and fetches the JSON API from it), no-referrer and no framing.
- No server version: `Server: sentiment-monitor`, also on aiohttp's own low-level errors.
- A `Host` header that names none of the allowed hosts is refused (421): DNS rebinding cannot
  make a browser read the API through an attacker's name. Probes are exempt, so an
  orchestrator may call them by IP.
- A request body over `MAX_BODY_BYTES` is refused (413) before anything reads it; the API is
  read-only, so no handler needs more.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import aiohttp.web_response
from aiohttp import hdrs
from aiohttp import web as aioweb

SERVER_NAME = "sentiment-monitor"
MAX_BODY_BYTES = 16 * 1024
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
    hdrs.SERVER: SERVER_NAME,
}


def host_name(header: str) -> str:
    """'Example.COM:6066' -> 'example.com'; '[::1]:6066' -> '::1'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    name, _, port = header.rpartition(":")
    return name if name and port.isdigit() and ":" not in name else header


def allowed_hosts(web_host: str, extra: Iterable[str] = (), dashboard_url: str | None = None) -> frozenset[str]:
    """Loopback names, the bound host (unless a wildcard), the dashboard URL's host and `extra`;
    `*` in `extra` turns the check off."""
    names = set(LOOPBACK_HOSTS) | {h.strip().lower() for h in extra if h.strip()}
    if web_host not in ("0.0.0.0", "::", ""):  # noqa: S104 - compared with, never bound
        names.add(web_host.lower())
    if dashboard_url:
        names.add((urlsplit(dashboard_url).hostname or "").lower())
    return frozenset(names - {""})


def _refuse(status: int, message: str) -> aioweb.Response:
    return aioweb.json_response({"error": message}, status=status, headers=SECURITY_HEADERS)


def security_middleware(hosts: frozenset[str], max_body: int = MAX_BODY_BYTES) -> Any:
    check_host = "*" not in hosts

    @aioweb.middleware
    async def secure(request: aioweb.Request, handler: Any) -> Any:
        if check_host and request.path not in PROBE_PATHS and host_name(request.host) not in hosts:
            return _refuse(421, "unknown host")
        length = request.content_length
        if (length is not None and length > max_body) or (length is None and request.body_exists):
            return _refuse(413, f"request body over {max_body} bytes")  # chunked: no length to check
        try:
            response = await handler(request)
        except aioweb.HTTPException as exc:  # 404, 405, ...: the same headers
            response = aioweb.Response(status=exc.status, reason=exc.reason, text=exc.text, headers=exc.headers)
        response.headers.update(SECURITY_HEADERS)
        return response

    return secure


def hide_server_version() -> None:
    """aiohttp's own error replies (a malformed request line) bypass middlewares and would say
    `Server: Python/3.x aiohttp/3.x`: make its default name carry no version."""
    aiohttp.web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined]


def application_options(
    web_host: str,
    extra_hosts: Iterable[str] = (),
    dashboard_url: str | None = None,
    middlewares: Iterable[Any] = (),
) -> dict[str, Any]:
    """`web_application_options` for the worker: the security middleware outermost (so refusals
    and 401s carry the headers too), then `middlewares` (the token guard)."""
    hide_server_version()
    hosts = allowed_hosts(web_host, extra_hosts, dashboard_url)
    return {"middlewares": [security_middleware(hosts), *middlewares], "client_max_size": MAX_BODY_BYTES}
