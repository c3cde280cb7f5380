"""Where derived data lives beside the raw points: one rule for every store and command.

Rollups are kept apart from the raw measurements so that the raw stored shape (a public
contract) never changes: in InfluxDB a database of their own, `<db>_rollups` (portable to every
InfluxDB line); in SQLite a file of its own beside the raw one, `<name>_rollups.db` (so the
raw file's tables stay as they were, and rollup reads never wait on the collector's commits).
The dirty marks of the writers sit beside the rollups in InfluxDB, and in a table of the raw
file in SQLite (marked in the same transaction as the points).
"""

from __future__ import annotations

from urllib.parse import urlsplit

SUFFIX = "_rollups"


def rollup_database(database: str) -> str:
    return database + SUFFIX


def rollup_url(url: str) -> str:
    """The URL of the rollups of the store at `url`."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        head, dot, ext = url.rpartition(".")
        return f"{head}{SUFFIX}.{ext}" if dot and "/" not in ext else url + SUFFIX
    return parts._replace(path=parts.path + SUFFIX).geturl()
