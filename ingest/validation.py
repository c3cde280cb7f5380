"""One line for a pydantic `ValidationError`: the first problem, naming its key.

The config file's sources, the settings and the pilot registry all refuse bad input with one
line a user can act on (DESIGN.md "Bad input"); they differ only in how they name *where*
(`sources[1] (gw1)`, `CITYPILOT_STORE_URL (or store_url in c.toml)`, a registry path), so the
wording of the problem itself is made here, once.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from pydantic import ValidationError

# Parts of an error location that name a type of a union or a mapping, not a key.
_NOT_KEYS = frozenset(("str", "FieldMap"))


@dataclass(frozen=True, slots=True)
class Problem:
    """The first error of a ValidationError, in words."""

    loc: tuple[str, ...]  # keys and indexes down to the bad value
    kind: str  # pydantic's error type, e.g. "extra_forbidden"
    message: str  # "unknown key (known: a, b)", "required key is missing", or pydantic's
    more: int  # further errors not described

    @property
    def key(self) -> str:
        return ".".join(self.loc)

    def text(self) -> str:
        return self.message + (f" [+{self.more} more]" if self.more else "")


def first_problem(exc: ValidationError, known: Collection[str] = (),
                  show_input: bool = False) -> Problem:
    """`known`: the keys allowed where an unknown key was found; `show_input`: append the
    offending scalar value (`(got 'x')`), for inputs that are no secret."""
    err = exc.errors(include_url=False, include_input=show_input)[0]
    loc = tuple(str(part) for part in err["loc"] if part not in _NOT_KEYS)
    kind = err["type"]
    message = err["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        message = f"unknown key (known: {', '.join(known)})" if known else "unknown key"
    elif kind == "missing":
        message = "required key is missing"
    elif show_input:
        value = err.get("input")
        if isinstance(value, str | int | float) and value != "":
            message += f" (got {value!r})"
    return Problem(loc, kind, message, exc.error_count() - 1)


def one_line(exc: ValidationError, where: str = "", known: Collection[str] = ()) -> str:
    """`where.key: problem`; a check across keys that starts its message with the key it
    blames (`name: ...`) is placed under that key."""
    problem = first_problem(exc, known)
    head = ".".join(part for part in (where, problem.key) if part)
    if not problem.loc and problem.message.split(":")[0] in known:
        return f"{where}.{problem.text()}" if where else problem.text()
    return f"{head}: {problem.text()}" if head else problem.text()
