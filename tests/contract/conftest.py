"""The fixtures of the contract suites: each test runs once per store, with the collector's
`Store` and the API's `Reader` on the same fresh database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ingest.stores import open_reader, open_store
from ingest.stores.base import Reader, Store

URL_FIXTURES = {"sqlite": "sqlite_url", "influxdb": "influx_url"}


@pytest.fixture(params=sorted(URL_FIXTURES))
def backend_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(URL_FIXTURES[request.param]))


@pytest.fixture
async def store(backend_url: str) -> AsyncIterator[Store]:
    async with open_store(backend_url) as opened:
        yield opened


@pytest.fixture
async def reader(backend_url: str) -> AsyncIterator[Reader]:
    """A reader of the same store, as the API opens it beside a running collector."""
    async with open_reader(backend_url) as opened:
        yield opened
