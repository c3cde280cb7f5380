"""The on-disk spool (`fifo.Spool`): a bounded, crash-safe FIFO of opaque records, shared by
the collector and the gateway agent; `file` is its SQLite file, `salvage` what is done with
one that is damaged."""

from ingest.spool.fifo import Depth, Record, Spool, SpoolError, SpoolLocked

__all__ = ["Depth", "Record", "Spool", "SpoolError", "SpoolLocked"]
