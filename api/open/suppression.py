"""Small counts suppressed: which usage cells and totals may be published.

A cell (one service on one local day) is published only when at least `k` distinct
pseudonymous users contribute (primary suppression): a rule of the cell alone, so a cell
reads the same in every answer, whatever period was asked for. A per-service total over the
period is published only when it has at least `k` users and none of that service's days in
the period is suppressed (secondary suppression, of the total): a published total is then
the sum of published days, and a suppressed day enters no published figure at all, so no
combination of answers for any periods reveals it (a total minus its published days, or two
overlapping periods' totals subtracted, give nothing that is not published). A suppressed
value is the flag `c` (Eurostat's confidential). Pure: the property-based tests
(tests/unit/test_suppression.py) prove these rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

FLAG: Final = "c"
Shown = int | Literal["c"]
RULE = ("A cell (service x local day) is published only when at least {k} distinct "
        "pseudonymous users contribute; otherwise its uses and users read \"c\" "
        "(confidential). A service's total over the period is published only when it has "
        "at least {k} users and none of its days in the period is suppressed, so that no "
        "published figure, in this answer or in one for another period, reveals a "
        "suppressed day.")


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
    hidden = {service for (_, service), shown in out.items() if shown.suppressed}
    shown_totals = {service: Published(FLAG, FLAG) if service in hidden else _shown(count, k)
                    for service, count in totals.items()}
    return out, shown_totals
