"""schemathesis against the live OpenAPI document: no 5xx, and every answer (errors included)
matches the document: status, media type, headers, schema.

The API runs in a real uvicorn on a free port, over InfluxDB holding the KPI contract data
(the store where escaping matters most), and is called with an admin key so that every route
is reached; the role matrix itself is `test_access.py`. The example count is kept modest so
the run stays well under a minute.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import ApiOptions, create_app
from api.catalog import Catalog, Registry, Role
from ingest.stores import open_store
from tests.api.conftest import P2, serving
from tests.contract.test_kpis import PILOT, seed
from tests.servers import InfluxDB, free_port

EXAMPLES = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


async def _seed(url: str) -> None:
    async with open_store(url) as store:
        assert await store.write(seed()) == []


@pytest.fixture(scope="module")
def server(influxdb: InfluxDB, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, str]]:
    """(base URL, admin key) of a uvicorn serving the API."""
    url = influxdb.url(f"schemathesis_{int(time.time() * 1000)}")
    asyncio.run(_seed(url))
    catalog_url = f"sqlite:///{tmp_path_factory.mktemp('st') / 'catalog.db'}"
    catalog = Catalog(catalog_url, key_cost=2**8)
    catalog.load(Registry(pilots=(PILOT, P2)))
    _, key = catalog.create_key("schemathesis", Role.ADMIN)
    catalog.close()
    app = create_app(ApiOptions(store_url=url, catalog_url=catalog_url))
    with serving(app, free_port()) as base:
        yield base, key


def test_no_server_error_and_no_schema_violation(server: tuple[str, str]) -> None:
    # The operations are walked here with `as_strategy` rather than `@schema.parametrize()`
    # over `schemathesis.pytest.from_fixture`, which breaks on pytest 9 (`Function._nodeid`).
    base, key = server
    api = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 18
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, key)
            except Unsatisfiable:
                continue  # nothing invalid to send (no parameters)
            except (Exception, BaseExceptionGroup) as exc:  # every failing operation, at once
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    assert not failures, "\n\n".join(failures)


def _fuzz(operation: Any, mode: GenerationMode, key: str) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)

    run()


def test_the_document_describes_problem_responses(server: tuple[str, str]) -> None:
    document = httpx.get(f"{server[0]}/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (
                        method, path, status)
            if path.startswith("/api/v1/"):
                assert operation["security"] == [{"apiKey": []}], (method, path)
                assert "401" in operation["responses"], (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_placeholder_page(server: tuple[str, str], tmp_path: Path) -> None:
    page = httpx.get(f"{server[0]}/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/docs" in page.text
