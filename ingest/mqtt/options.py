"""How citypilot reaches an MQTT broker, with no MQTT library: the broker URL (parsed once,
redacted for logs), the options types, the one TLS context every client builds (collector,
gateway agent, simulators), the reconnect backoff, and the timeout error every
`wait_connected` raises.

One place for these because each used to exist two or three times with small differences
(a TLS set-up without a CA option, another rule for an empty password).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)


class MqttConfigError(ValueError):
    """The MQTT URL or options are wrong; the message names the fault."""


class MqttTimeout(TimeoutError):
    """No connection to the broker within the time asked for."""


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    """A parsed `mqtt://` or `mqtts://` URL; `str()` never shows the credentials."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerUrl:
    """`mqtt://[user[:pass]@]host[:1883]` or `mqtts://...` (TLS, port 8883).

    User and password are percent-decoded. No user means no credentials; a user with an
    empty password (`user:@host`) sends that empty password, as MQTT allows.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise MqttConfigError(f"MQTT URL {redact_url(url)!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise MqttConfigError(f"MQTT URL {redact_url(url)!r} has no host")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        raise MqttConfigError(f"MQTT URL {redact_url(url)!r} has an invalid port") from None
    user = unquote(parts.username) if parts.username else None
    password = None
    if user is not None and parts.password is not None:
        password = unquote(parts.password)
    return BrokerUrl(parts.hostname, port, parts.scheme == "mqtts", user, password)


def redact_url(url: str) -> str:
    """The URL with its password replaced by `***`, for logs and listings."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


@dataclass(frozen=True, slots=True)
class MqttOptions:
    url: str
    client_id: str
    session_expiry_s: float = 86400.0
    receive_maximum: int = 10_000
    keepalive_s: int = 30
    ca_file: str | None = None
    tls_insecure: bool = False
    connect_timeout_s: float = 10.0
    protocol: str = "auto"  # "auto": MQTT 5, else 3.1.1 when refused; or "5", "3.1.1"

    @property
    def broker(self) -> BrokerUrl:
        return parse_broker_url(self.url)


def client_tls(broker: BrokerUrl, ca_file: str | None = None,
               insecure: bool = False) -> ssl.SSLContext | None:
    """The TLS context for a client of `broker`: None for `mqtt://` (a warning when
    credentials then travel in clear). It verifies the broker's certificate and host name
    against `ca_file`, or the system CAs without one; `insecure` turns both checks off, loudly.
    """
    if not broker.tls:
        if broker.username is not None:
            log.warning("credentials for %s travel in clear text (mqtt://); use mqtts://",
                        broker)
        return None
    context = ssl.create_default_context(cafile=ca_file)
    if insecure:
        log.warning("TLS certificate verification is OFF for %s: anyone on the path can "
                    "read and forge this connection", broker)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def reconnect_delay_s(attempt: int, draw: float, *, base_s: float = 0.5,
                      cap_s: float = 15.0) -> float:
    """Seconds to wait before reconnect attempt `attempt` (0: the first after a loss).

    Exponential with "equal jitter": the ceiling doubles from `base_s` up to `cap_s`, and the
    delay is uniform in [ceiling/2, ceiling] for `draw` uniform in [0, 1) (`random.random()`),
    so collectors that lost the same broker do not all come back in the same instant, and
    none retries sooner than half its ceiling.
    """
    ceiling = min(cap_s, base_s * 2.0 ** min(max(attempt, 0), 62))
    return ceiling / 2 * (1.0 + min(max(draw, 0.0), 1.0))


async def wait_until_connected(connected: asyncio.Event, within_s: float,
                               broker: BrokerUrl | str) -> None:
    """Wait for `connected`, or raise MqttTimeout naming the broker: the contract of every
    `wait_connected` in this package."""
    try:
        async with asyncio.timeout(within_s):
            await connected.wait()
    except TimeoutError:
        raise MqttTimeout(f"no connection to {broker} after {within_s:g} s") from None


class ConnectionState:
    """`connected` and `wait_connected`, the same on every subscriber and publisher here:
    `_connected` is set while the connection (and, for a subscriber, its subscription) is
    up."""

    options: MqttOptions
    _connected: asyncio.Event

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, within_s: float | None = None) -> None:
        """Return once connected; raise MqttTimeout after `within_s` (default: the
        options' connect timeout)."""
        await wait_until_connected(self._connected, within_s or self.options.connect_timeout_s,
                                   self.options.broker)
