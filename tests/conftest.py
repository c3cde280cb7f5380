"""Session servers (one Mosquitto, one InfluxDB) and per-test isolation: a fresh InfluxDB
database, a fresh SQLite file, a unique topic prefix. Tests that stop or kill a server ask for
their own through the factories. A failing test prints the servers' logs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import InfluxDB, Mosquitto, ServerProcess

_started: list[ServerProcess] = []


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.when == "call" and report.failed:
        for server in _started:
            report.sections.append((f"{server.name} log ({server.workdir})", server.log_tail()))
    return report


def _launch(server: ServerProcess) -> ServerProcess:
    server.start()
    _started.append(server)
    return server


@pytest.fixture(autouse=True)
def _no_stray_children() -> Iterator[None]:
    """A test that fails half-way must not leave a collector or agent process running."""
    from tests.collectors import CHILDREN

    yield
    while CHILDREN:
        proc = CHILDREN.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    server = _launch(Mosquitto(tmp_path_factory.mktemp("mosquitto")))
    yield server  # type: ignore[misc]
    server.stop()


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    server = _launch(InfluxDB(tmp_path_factory.mktemp("influxdb")))
    yield server  # type: ignore[misc]
    server.stop()


@pytest.fixture
def make_mosquitto(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """A private broker the test may stop, kill and restart."""
    own: list[Mosquitto] = []

    def make(extra_conf: str = "", **options: int) -> Mosquitto:
        server = Mosquitto(tmp_path / f"mosquitto{len(own)}", extra_conf, **options)
        _launch(server)
        own.append(server)
        return server

    yield make
    for server in own:
        server.kill()
        _started.remove(server)


@pytest.fixture
def make_influxdb(tmp_path: Path) -> Iterator[Callable[..., InfluxDB]]:
    """A private InfluxDB the test may stop, kill and restart."""
    own: list[InfluxDB] = []

    def make(auth: bool = False, data: dict[str, str] | None = None,
             http: dict[str, str] | None = None) -> InfluxDB:
        server = InfluxDB(tmp_path / f"influxdb{len(own)}", auth=auth, data=data, http=http)
        _launch(server)
        own.append(server)
        return server

    yield make
    for server in own:
        server.kill()
        _started.remove(server)


@pytest.fixture
def influx_url(influxdb: InfluxDB) -> str:
    """A fresh database name on the session InfluxDB (the store creates it)."""
    return influxdb.url(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def prefix() -> str:
    """A unique pilot id per test, so topics never collide on a shared broker."""
    return f"p{uuid.uuid4().hex[:10]}"
