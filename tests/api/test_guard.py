"""The API against hostile clients (`api/guard.py`): failed authentications rate-limited per
client address, size limits on queries and bodies, security headers on every answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from api.app import ApiOptions, create_app
from api.catalog import Catalog, Role
from api.guard import MAX_BODY_BYTES, MAX_QUERY_BYTES
from tests.api.conftest import Live, serving, start_live
from tests.servers import free_port

WRONG = "cp_0123456789ab_not-the-secret"


async def test_failed_authentications_are_limited_per_client_address(
        sqlite_url: str, tmp_path: Path) -> None:
    async for live in start_live(sqlite_url, tmp_path, auth_failure_limit="3/minute"):
        for guess in (WRONG, "garbage", WRONG + "x"):
            answer = await live.client.get("/api/v1/pilots",
                                           headers={"Authorization": f"Bearer {guess}"})
            assert answer.status_code == 401, answer.text
        refused = await live.client.get("/api/v1/pilots",
                                        headers={"Authorization": f"Bearer {WRONG}"})
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "failed authentications" in refused.json()["detail"]
        # Spent: the address gets the 429 before any key is checked, a right one too.
        assert (await live.get("/api/v1/pilots", "viewer")).status_code == 429
        # No key at all is no guess: the 401 that asks for one.
        assert (await live.get("/api/v1/pilots")).status_code == 401
        # Another address is not held back.
        async with _client_at(live, "10.0.0.2") as other:
            assert (await other.get("/api/v1/pilots", headers=live.auth("viewer"))
                    ).status_code == 200


async def test_right_keys_spend_nothing(sqlite_url: str, tmp_path: Path) -> None:
    async for live in start_live(sqlite_url, tmp_path, auth_failure_limit="2/minute"):
        for _ in range(10):
            assert (await live.get("/api/v1/pilots", "viewer")).status_code == 200
        assert (await live.client.get("/api/v1/pilots", headers={
            "Authorization": f"Bearer {WRONG}"})).status_code == 401


def _client_at(live: Live, host: str) -> httpx.AsyncClient:
    transport = live.client._transport  # noqa: SLF001 - the same app, another client address
    assert isinstance(transport, httpx.ASGITransport)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=transport.app,
                                                           client=(host, 40000)),
                             base_url="http://citypilot.test")


async def test_every_answer_carries_the_security_headers(live: Live) -> None:
    for path, who in (("/api/v1/pilots", "viewer"), ("/api/v1/pilots", None),
                      ("/healthz", None), ("/no/such/route", None), ("/", None),
                      ("/console/app.js", None)):
        answer = await live.get(path, who)
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["referrer-policy"] == "no-referrer", path
        assert answer.headers["x-frame-options"] == "DENY", path
    page = await live.get("/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def _serve(tmp_path: Path, sqlite_url: str) -> AsyncIterator[tuple[str, str]]:
    catalog_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = Catalog(catalog_url, key_cost=2**8)
    _, key = catalog.create_key("admin", Role.ADMIN)
    catalog.close()
    with serving(create_app(ApiOptions(store_url=sqlite_url, catalog_url=catalog_url)),
                 free_port()) as base:
        yield base, key


async def test_long_queries_and_large_or_unsized_bodies_are_refused(
        sqlite_url: str, tmp_path: Path) -> None:
    async for base, key in _serve(tmp_path, sqlite_url):  # a real uvicorn: its HTTP parsing
        auth = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=30) as http:
            ok = await http.get("/api/v1/deadletters", params={"reason": "bad_json"})
            assert ok.status_code == 200
            long = await http.get("/api/v1/deadletters",
                                  params={"reason": "x" * (MAX_QUERY_BYTES + 1)})
            assert long.status_code == 414
            assert long.headers["content-type"] == "application/problem+json"
            large = await http.put("/api/v1/registry", content=b" " * (MAX_BODY_BYTES + 1),
                                   headers={"Content-Type": "application/json"})
            assert large.status_code == 413, large.text
            assert str(MAX_BODY_BYTES) in large.json()["detail"]

            async def chunks() -> AsyncIterator[bytes]:
                yield b'{"pilots": '
                yield b"[]}"

            unsized = await http.put("/api/v1/registry", content=chunks(),
                                     headers={"Content-Type": "application/json"})
            assert unsized.status_code == 411, unsized.text
            assert unsized.headers["x-content-type-options"] == "nosniff"
            # Within the limits the same route answers as before.
            fine = await http.put("/api/v1/registry", content=b'{"pilots": []}',
                                  headers={"Content-Type": "application/json"})
            assert fine.status_code == 200, fine.text
