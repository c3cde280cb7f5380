"""The stores, chosen from the URL scheme: `open_store` for the collector's `Store`,
`open_reader` for everyone else's `Reader`.

Explicit dicts map each scheme to its implementation (no entry points, no discovery), so what
`CITYPILOT_STORE_URL` can name is visible here. `redact` hides a URL's password wherever a
URL is logged or shown. A bad URL or option is a `StoreConfigError` (a `StoreRejected`) whose
message is one line naming the fix.

What the dashboards' generator and check use of the stores is named here too, so that they
import no store module: `InfluxReader` (its `influxql` runs a panel's query), the InfluxQL
quoting, and `rollup_database` (where the rollups live beside a database).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ingest.stores.base import (
    Reader,
    Store,
    StoreConfigError,
    StoreError,
    StoreRejected,
    StoreUnavailable,
)
from ingest.stores.influx import InfluxReader, InfluxWriter
from ingest.stores.influx.influxql import conditions, number, quote_ident, quote_literal
from ingest.stores.naming import rollup_database
from ingest.stores.sqlite import SqliteReader, SqliteWriter

__all__ = ["InfluxReader", "StoreConfigError", "StoreError", "StoreRejected",
           "StoreUnavailable", "conditions", "number", "open_reader", "open_store",
           "quote_ident", "quote_literal", "redact", "rollup_database"]

C = TypeVar("C")
STORES: dict[str, Callable[..., Store]] = {
    "sqlite": SqliteWriter,
    "influxdb": InfluxWriter,
    "influxdbs": InfluxWriter,
}
READERS: dict[str, Callable[..., Reader]] = {
    "sqlite": SqliteReader,
    "influxdb": InfluxReader,
    "influxdbs": InfluxReader,
}
_EXAMPLES = ("sqlite:///path/to/file.db or influxdb://user:pass@host:8086/dbname "
             "(influxdbs:// for TLS)")


def open_store(url: str, **options: Any) -> Store:
    """The collector's store for `url`, not yet entered (`async with open_store(url) as s:`).

    `options` go to the implementation (e.g. `deadline_s`: how long a write may keep failing
    before StoreUnavailable)."""
    return _open(STORES, url, options)


def open_reader(url: str, **options: Any) -> Reader:
    """The reader for `url`, not yet entered; the same options as `open_store`."""
    return _open(READERS, url, options)


def _open(table: dict[str, Callable[..., C]], url: str, options: dict[str, Any]) -> C:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    factory = table.get(scheme)
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
