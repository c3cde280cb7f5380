"""One Mosquitto per module, started from the shipped configuration with a test CA and the
collectors' account made by `citypilot gateway collector`/`ca`; `gateway(pilot, gw)` adds a
gateway with `citypilot gateway add`'s code, reloads the broker and waits until it can log in
on the gateways' listener (TLS)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from citypilot.testca import make_ca
from ingest.gateway.credentials import COLLECTOR_USER, add_gateway, set_collector
from tests.conftest import _launch, _started
from tests.deploy.brokerclient import Refused, close, connect
from tests.servers import ShippedMosquitto
from tests.support import wait_until


@dataclass(frozen=True)
class Broker:
    server: ShippedMosquitto
    auth: Path
    certs: Path
    collector_password: str

    @property
    def passwd(self) -> Path:
        return self.auth / "passwd"

    @property
    def acl(self) -> Path:
        return self.auth / "acl"

    @property
    def ca_file(self) -> str:
        return str(self.certs / "ca.crt")

    @property
    def collectors_passwd(self) -> Path:
        return self.auth / "collectors.passwd"

    def collector_url(self, *, tls: bool = False) -> str:
        return self.server.url(COLLECTOR_USER, self.collector_password, tls=tls)


def can_log_in(url: str, ca_file: str | None = None) -> bool:
    try:
        close(connect(url, ca_file=ca_file))
    except Refused:
        return False
    return True


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    root = tmp_path_factory.mktemp("shipped-mosquitto")
    auth, certs = root / "auth", root / "certs"
    make_ca(certs, ["localhost", "127.0.0.1"])
    password = secrets.token_urlsafe(24)
    set_collector(auth / "collectors.passwd", auth / "passwd", auth / "acl", password)
    server = ShippedMosquitto(root / "server", auth, certs)
    _launch(server)
    yield Broker(server, auth, certs, password)
    server.stop()
    _started.remove(server)


@pytest.fixture
def gateway(broker: Broker) -> Callable[[str, str], str]:
    """Credentials for pilot/gateway, live on the broker; returns the gateway's mqtts:// URL
    on the gateways' listener (connect with `ca_file=broker.ca_file`)."""
    def make(pilot: str, gw: str) -> str:
        user, password = add_gateway(broker.passwd, broker.acl, pilot, gw)
        broker.server.reload()
        url = broker.server.gateway_url(user, password)
        wait_until(lambda: can_log_in(url, broker.ca_file), timeout=10)
        return url
    return make

