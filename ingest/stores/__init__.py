"""The stores behind the one `Store` contract, chosen from the URL scheme.

An explicit dict maps each scheme to its implementation (no entry points, no discovery), so
what `CITYPILOT_STORE_URL` can name is visible here. `redact` hides a URL's password wherever a
URL is logged or shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ingest.stores.base import Store, StoreConfigError
from ingest.stores.influx import InfluxStore
from ingest.stores.sqlite import SqliteStore

__all__ = ["open_store", "redact"]

STORES: dict[str, Callable[..., Store]] = {
    "sqlite": SqliteStore,
    "influxdb": InfluxStore,
    "influxdbs": InfluxStore,
}
_EXAMPLES = ("sqlite:///path/to/file.db or influxdb://user:pass@host:8086/dbname "
             "(influxdbs:// for TLS)")


def open_store(url: str, **options: Any) -> Store:
    """The store for `url`, not yet entered (`async with open_store(url) as store:`).

    `options` go to the implementation (e.g. `deadline_s` for InfluxDB); a bad URL or an
    unknown option raises StoreConfigError with a one-line message naming the fix."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    factory = STORES.get(scheme)
    if factory is None:
        raise StoreConfigError(f"store URL {redact(url)!r} is not supported: use {_EXAMPLES}")
    try:
        return factory(url, **options)
    except TypeError as exc:
        raise StoreConfigError(f"bad option for the {scheme} store: {exc}") from None
    except StoreConfigError as exc:
        raise StoreConfigError(f"store URL {redact(url)!r}: {exc}") from None


def redact(url: str) -> str:
    """`url` with its password replaced by `***`, for logs and messages."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        # Unparseable (e.g. a bad port): hide everything between the scheme and the host.
        head, sep, tail = url.partition("://")
        return f"{head}{sep}***@{tail.rpartition('@')[2]}" if "@" in tail else url
    if password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{hostinfo}").geturl()
