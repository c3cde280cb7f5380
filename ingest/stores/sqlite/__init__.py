"""The SQLite backend, the embedded default: `SqliteWriter` (the collector's `Store`) and
`SqliteReader`, each on a connection of its own (`connection.py`), reading with `sql.py`."""

from ingest.stores.sqlite.reader import SqliteReader
from ingest.stores.sqlite.writer import SqliteWriter

__all__ = ["SqliteReader", "SqliteWriter"]
