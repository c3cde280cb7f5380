"""Logging set-up: records go to the stderr of the moment, not the one of `configure`."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from citypilot.logs import configure


def test_a_replaced_stderr_gets_the_records_and_a_closed_one_is_never_written(
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        first = io.StringIO()
        monkeypatch.setattr(sys, "stderr", first)
        configure("INFO")
        first.close()  # the stream of an earlier command (a test's capture) is gone
        second = io.StringIO()
        monkeypatch.setattr(sys, "stderr", second)
        logging.getLogger("citypilot.test").warning("spool full")
        assert "spool full" in second.getvalue()
        assert "Logging error" not in second.getvalue()
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
