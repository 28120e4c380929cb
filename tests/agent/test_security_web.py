"""The web servers, real HTTP on loopback, no Kafka: the API process's aiohttp app (the queries and
the live page) and a worker's (Faust's): security headers, no server version, Host and body-size
refusals, the route split between them, and the live page under its CSP."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from stream_app.ingest.app import build_app as build_worker
from stream_app.pipeline.counts import Counts
from stream_app.settings import load_settings
from stream_app.testing.fakes import MinuteStore
from stream_app.web.routes import ROUTES, Site
from stream_app.web.security import CONTENT_SECURITY_POLICY, allowed_hosts, host_name
from stream_app.web.server import build_app
from stream_app.wiring import Wiring

TOKEN = "web-token-for-the-test"
STORE = MinuteStore({"ent:Veltro Motors": Counts.of(5, 3, 2, -1.5)})


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[TestServer]:
    """The API process's application, as `sentiment-monitor api` builds it, over a memory store."""
    settings = load_settings(**getattr(request, "param", {}))
    token = settings.web_token.get_secret_value() if settings.web_token else None
    site = Site(STORE, None, ["Veltro Motors"], lambda: True, lambda: b"", token=token is not None, routes=ROUTES)
    hosts = settings.web_allowed_hosts.split(",")
    web_app = build_app(site, ROUTES, settings.api_host, hosts, settings.dashboard_url, token)
    async with TestServer(web_app, host="127.0.0.1") as test_server:
        yield test_server


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[TestServer]:
    """A worker's own web server (Faust's): metrics, probes and the model swap only."""
    app = build_worker(
        load_settings(data_dir=tmp_path, web_token=TOKEN),
        lambda *_: Wiring(processor=None, store=STORE, watchlist=["Veltro Motors"]),  # type: ignore[arg-type]
    )
    app.sm_ready.set()
    async with TestServer(await app.web.wsgi(), host="127.0.0.1") as test_server:
        yield test_server


async def test_a_worker_serves_metrics_probes_and_the_swap_but_no_queries(worker: TestServer) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path, status in [("/healthz", 200), ("/readyz", 200), ("/metrics", 200), ("/overview", 404), ("/top", 404)]:
        got, headers, _ = await _get(worker, path, headers=auth)
        assert got == status, path
        _assert_hardened(headers)
    async with ClientSession() as session:
        async with session.post(worker.make_url("/admin/model"), data=b"{}", headers=auth) as response:
            assert response.status == 404  # routed; this wiring has no swapper
        async with session.post(worker.make_url("/admin/model"), data=b"{}") as response:
            assert response.status == 401  # the token guard covers the swap


async def _get(server: TestServer, path: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    async with ClientSession() as session, session.get(server.make_url(path), **kwargs) as response:
        return response.status, dict(response.headers), await response.read()


def _assert_hardened(headers: dict[str, str]) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert headers["Server"] == "sentiment-monitor"


@pytest.mark.parametrize("server", [{"web_token": TOKEN}], indirect=True)
async def test_every_response_carries_the_headers_and_no_server_version(server: TestServer) -> None:
    for path, status in [
        ("/healthz", 200),
        ("/dashboard", 200),
        ("/dashboard/dashboard.js", 200),
        ("/dashboard/uPlot.iife.min.js", 200),
        ("/overview", 401),  # the token guard's refusal carries them too
        ("/no-such-page", 401),  # unknown paths too: no route probing without the token
    ]:
        got, headers, _ = await _get(server, path)
        assert got == status, path
        _assert_hardened(headers)
    got, headers, body = await _get(server, "/overview", headers={"Authorization": f"Bearer {TOKEN}"})
    assert got == 200 and b"Veltro Motors" in body
    assert headers["Content-Type"].startswith("application/json")
    _assert_hardened(headers)
    got, headers, _ = await _get(server, "/no-such-page", headers={"Authorization": f"Bearer {TOKEN}"})
    assert got == 404
    _assert_hardened(headers)
    csp = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "http" not in CONTENT_SECURITY_POLICY


async def test_a_malformed_request_gets_no_server_version_either(server: TestServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GARBAGE\x00 / HTTP/1.1\r\n\r\n")
    await writer.drain()
    reply = (await asyncio.wait_for(reader.read(4096), 10)).decode(errors="replace")
    writer.close()
    assert reply.split("\r\n", 1)[0].split()[1] == "400"
    assert not re.search(r"(?im)^server:.*(aiohttp|python|\d)", reply), reply


async def test_a_foreign_host_header_is_refused_but_probes_answer(server: TestServer) -> None:
    status, headers, _ = await _get(server, "/overview", headers={"Host": "attacker.example:6066"})
    assert status == 421
    _assert_hardened(headers)
    assert (await _get(server, "/readyz", headers={"Host": "10.1.2.3:6066"}))[0] == 200  # an orchestrator's probe
    for host in ("localhost:6066", "127.0.0.1", "[::1]:6066", "LOCALHOST"):
        assert (await _get(server, "/overview", headers={"Host": host}))[0] == 200, host


WILDCARD = {"web_allowed_hosts": "sentiment.internal, dash.example", "web_host": "0.0.0.0"}  # noqa: S104 - not bound


@pytest.mark.parametrize("server", [{**WILDCARD, "api_host": "0.0.0.0"}], indirect=True)  # noqa: S104
async def test_allowed_hosts_come_from_settings(server: TestServer) -> None:
    assert (await _get(server, "/overview", headers={"Host": "sentiment.internal:6066"}))[0] == 200
    assert (await _get(server, "/overview", headers={"Host": "0.0.0.0:6066"}))[0] == 421


def test_host_parsing_and_defaults() -> None:
    assert host_name("Example.COM:6066") == "example.com" and host_name("[::1]:80") == "::1"
    assert host_name("no-port") == "no-port" and host_name("::1") == "::1"
    hosts = allowed_hosts("10.0.0.5", ["a.example", " "], "https://dash.example/dashboard")
    assert hosts == {"127.0.0.1", "localhost", "::1", "10.0.0.5", "a.example", "dash.example"}


async def test_oversized_and_chunked_bodies_are_refused(server: TestServer) -> None:
    async with ClientSession() as session:
        async with session.post(server.make_url("/overview"), data=b"x" * 100_000) as response:
            assert response.status == 413
            _assert_hardened(dict(response.headers))

        async def chunks() -> AsyncIterator[bytes]:
            yield b"x" * 10

        async with session.post(server.make_url("/overview"), data=chunks()) as response:
            assert response.status == 413
        async with session.get(server.make_url("/healthz"), data=b"small") as response:
            assert response.status == 200  # a small body on a GET is harmless


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
async def test_the_live_page_draws_under_its_content_security_policy(server: TestServer) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = await browser.new_page()
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        await page.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => "
            "console.error('Content Security Policy: ' + e.violatedDirective + ' ' + e.blockedURI))"
        )
        await page.goto(str(server.make_url("/dashboard")))
        await page.wait_for_selector('body[data-loaded="true"] .entity-card[data-entity="Veltro Motors"] canvas')
        await browser.close()
    assert not violations, violations
