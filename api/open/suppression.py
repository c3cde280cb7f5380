"""Small counts suppressed: which usage cells and totals may be published.

A cell (one service on one local day) is published only when at least `k` distinct
pseudonymous users contribute (primary suppression). A per-service total over the period is
published under the same rule, and, since uses add up, a published total minus its published
cells would reveal a row's only suppressed cell: such a row has its smallest published cell
suppressed too (secondary suppression), so a row with a published total has no suppressed
cell or at least two. A suppressed value is the flag `c` (Eurostat's confidential). Pure: the
property-based tests (tests/unit/test_suppression.py) prove both rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

FLAG: Final = "c"
Shown = int | Literal["c"]
RULE = ("A cell (service x local day) and a per-service total are published only when at "
        "least {k} distinct pseudonymous users contribute; otherwise uses and users read "
        "\"c\" (confidential). Where a service's total is published and exactly one of its "
        "days is suppressed, its smallest other day is suppressed too, so that the total "
        "minus the published days never reveals a suppressed day.")


@dataclass(frozen=True, slots=True)
class Count:
    uses: int
    users: int


@dataclass(frozen=True, slots=True)
class Published:
    uses: Shown
    users: Shown

    @property
    def suppressed(self) -> bool:
        return self.users == FLAG


def _shown(count: Count, k: int) -> Published:
    if count.users < k:
        return Published(FLAG, FLAG)
    return Published(count.uses, count.users)


def suppress(cells: Mapping[tuple[str, str], Count], totals: Mapping[str, Count], k: int
             ) -> tuple[dict[tuple[str, str], Published], dict[str, Published]]:
    """`cells` by (day, service), `totals` by service (users: distinct over the period)."""
    out = {key: _shown(count, k) for key, count in cells.items()}
    shown_totals = {service: _shown(count, k) for service, count in totals.items()}
    for service, total in shown_totals.items():
        row = sorted(key for key in out if key[1] == service)
        hidden = [key for key in row if out[key].suppressed]
        if total.suppressed or len(hidden) != 1:
            continue
        rest = [key for key in row if not out[key].suppressed]
        if rest:
            smallest = min(rest, key=lambda key: (cells[key].uses, cells[key].users, key))
            out[smallest] = Published(FLAG, FLAG)
        else:  # nothing else to hide: the total would be the one cell
            shown_totals[service] = Published(FLAG, FLAG)
    return out, shown_totals
