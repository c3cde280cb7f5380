"""What a Sparkplug B decoder knows of its edge nodes, kept on disk beside the spool.

Births and their alias tables are what make a node's DATA readable; held only in memory, a
collector restart turned the first DATA of every node into a `no_birth` dead letter and a
rebirth request. `NodeStates` keeps, per source, one row per edge node (group, edge): whether
it is born, its NBIRTH's `bdSeq`, and the alias tables of the node and of each device born
under it, as JSON, in a small SQLite file (`sparkplug-{source}.db`, WAL, `synchronous=FULL`).
A row is written when a birth or death changes it, before the batch holding that message can
be acknowledged, so what the broker no longer redelivers is on disk. Births are rare: one
commit each costs nothing beside the DATA that follows.

Not kept: the last `seq` (it changes with every message; after a restart the first one sets
it again, so a restart never looks like a gap) and the last rebirth request's time.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ingest.decode.sparkplug_payload import Scalar

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    grp TEXT NOT NULL,
    edge TEXT NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (grp, edge)
);
"""

Key = tuple[str, str]


@dataclass(slots=True)
class Table:
    """The metrics a birth declared: alias -> (name, datatype) and name -> datatype."""

    by_alias: dict[int, tuple[str, int | None]] = field(default_factory=dict)
    by_name: dict[str, int | None] = field(default_factory=dict)

    def saved(self) -> dict[str, Any]:
        return {"alias": [[a, n, t] for a, (n, t) in self.by_alias.items()],
                "name": self.by_name}

    @classmethod
    def restored(cls, doc: dict[str, Any]) -> Table:
        return cls({int(a): (str(n), t) for a, n, t in doc["alias"]}, dict(doc["name"]))


@dataclass(slots=True)
class Node:
    """What the decoder knows of one edge node."""

    born: bool = False
    bd_seq: Scalar | None = None
    seq: int | None = None  # the last seq seen
    table: Table = field(default_factory=Table)
    devices: dict[str, Table] = field(default_factory=dict)
    last_rebirth_ns: int | None = None

    def saved(self) -> dict[str, Any] | None:
        """What survives a restart (None: nothing worth keeping)."""
        if not self.born and not self.devices:
            return None
        bd_seq = self.bd_seq.hex() if isinstance(self.bd_seq, bytes) else self.bd_seq
        return {"born": self.born, "bd_seq": bd_seq, "table": self.table.saved(),
                "devices": {d: t.saved() for d, t in self.devices.items()}}

    @classmethod
    def restored(cls, doc: dict[str, Any]) -> Node:
        return cls(born=bool(doc["born"]), bd_seq=doc["bd_seq"],
                   table=Table.restored(doc["table"]),
                   devices={d: Table.restored(t) for d, t in doc["devices"].items()})


class NodeStates:
    """One source's edge-node states in `directory/sparkplug-{source}.db`."""

    def __init__(self, directory: Path, source: str) -> None:
        self.path = directory / f"sparkplug-{source}.db"
        self._db: sqlite3.Connection | None = None

    def open(self) -> dict[Key, Node]:
        """Open (create) the file and return every node's saved state."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            rows = db.execute("SELECT grp, edge, state FROM nodes").fetchall()
        except sqlite3.Error:
            db.close()
            raise
        self._db = db
        saved: dict[Key, Node] = {}
        for group, edge, state in rows:
            try:
                saved[(group, edge)] = Node.restored(orjson.loads(state))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                log.warning("unreadable saved state of Sparkplug node %s/%s: forgotten",
                            group, edge)
        return saved

    def save(self, key: Key, node: Node | None) -> None:
        """Keep a node's state (None: forget the node). A disk that refuses is logged: the
        state stays in memory, and a restart then costs that node one rebirth."""
        if self._db is None:
            return
        state = None if node is None else node.saved()
        try:
            if state is None:
                self._db.execute("DELETE FROM nodes WHERE grp = ? AND edge = ?", key)
            else:
                self._db.execute("INSERT OR REPLACE INTO nodes VALUES (?, ?, ?)",
                                 (*key, orjson.dumps(state)))
        except sqlite3.Error as exc:
            log.warning("cannot save the state of Sparkplug node %s: %s", "/".join(key), exc)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
