"""The polling helpers: only a truthy return is success; a check that never asserts fails."""

from __future__ import annotations

import itertools
import re

import pytest

from tests.support import eventually, wait_until


def test_a_check_that_never_asserts_fails() -> None:
    seen: list[int] = []

    def forgot_its_assertion() -> None:
        seen.append(1)  # looks at something, asserts nothing

    with pytest.raises(AssertionError, match="check returned None"):
        wait_until(forgot_its_assertion, timeout=0.2, interval=0.01)
    assert len(seen) > 1, "the check was polled until the deadline"


async def test_an_async_check_that_never_asserts_fails() -> None:
    async def forgot_its_return() -> None:
        assert True

    with pytest.raises(AssertionError, match="check returned None"):
        await eventually(forgot_its_return, timeout=0.2, interval=0.01)


@pytest.mark.parametrize("falsy", [False, 0, "", [], {}])
def test_a_falsy_result_is_not_yet_true(falsy: object) -> None:
    expected = re.escape(f"not true after 0.1s: check returned {falsy!r}")
    with pytest.raises(AssertionError, match=expected):
        wait_until(lambda: falsy, timeout=0.1, interval=0.01)


def test_the_last_assertion_message_is_the_failure() -> None:
    counter = itertools.count()

    def never() -> int:
        n = next(counter)
        assert n < 0, f"attempt {n}"
        return n

    with pytest.raises(AssertionError, match=r"not true after 0.1s: attempt \d+") as caught:
        wait_until(never, timeout=0.1, interval=0.01)
    assert isinstance(caught.value.__cause__, AssertionError)


def test_the_evidence_is_returned_once_the_check_holds() -> None:
    counter = itertools.count()

    def third() -> list[int]:
        n = next(counter)
        assert n >= 2, f"only {n}"
        return [n]

    assert wait_until(third, timeout=5, interval=0.001) == [2]


async def test_eventually_awaits_an_async_check_and_returns_its_value() -> None:
    counter = itertools.count()

    async def third() -> int:
        n = next(counter)
        return n if n >= 2 else 0

    assert await eventually(third, timeout=5, interval=0.001) == 2


async def test_wait_until_refuses_an_async_check() -> None:
    async def check() -> bool:
        return True

    with pytest.raises(TypeError, match="async check"):
        wait_until(check, timeout=0.1)  # type: ignore[arg-type]
