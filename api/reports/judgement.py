"""The rules a report adds to the KPI figures, each defined once and stated in the report.

- **Met or not**: against the pilot's registered target, in its direction (`at_least`: met
  when the achieved value is at least the target; `at_most`: when it is at most). No value:
  *no data*; no target: *no target*.
- **Change**: achieved minus baseline, and that over the baseline's magnitude in % (none when
  the baseline is 0).
- **Larger than missing data could explain**: a share `m` of the period's expected readings is
  missing (`m = 1 - data_completeness / 100`, the KPI API's completeness of the period), and
  `m_b` of the baseline period's when the baseline comes from the store (0 for a registry
  figure). Had the missing readings been there, they could have moved a figure by at most its
  own magnitude times the share missing, so the change counts as real when
  `|change| > m · |achieved| + m_b · |baseline|`. Unknown completeness: cannot tell.
- **Usage corners**: a service *works* when the pilot's availability reaches the target for
  `availability` (95 % when none is registered) and is *used* when its uses per deployed
  device reach one a day of the period (`USED_PER_DEVICE_PER_DAY`).
"""

from __future__ import annotations

from enum import StrEnum

from api.catalog import Direction, Target
from api.texts import N_

WORKS_AVAILABILITY = 95.0  # %: availability a service "works" at without a registered target
USED_PER_DEVICE_PER_DAY = 1.0  # uses per deployed device and day for a service to be "used"


class Mark(StrEnum):
    MET = N_("met")
    NOT_MET = N_("not met")
    NO_TARGET = N_("no target")
    NO_DATA = N_("no data")


class Corner(StrEnum):
    WORKING_AND_USED = N_("works and is used")
    WORKS_BUT_UNUSED = N_("works but unused")
    USED_BUT_UNRELIABLE = N_("used but unreliable")
    NEITHER = N_("neither works nor is used")
    UNKNOWN = N_("unknown")


def mark(value: float | None, target: Target | None) -> Mark:
    if value is None:
        return Mark.NO_DATA
    if target is None:
        return Mark.NO_TARGET
    if target.direction is Direction.AT_LEAST:
        return Mark.MET if value >= target.value else Mark.NOT_MET
    return Mark.MET if value <= target.value else Mark.NOT_MET


def change(achieved: float | None, baseline: float | None
           ) -> tuple[float | None, float | None]:
    """(absolute, %) change from the baseline to the achieved value."""
    if achieved is None or baseline is None:
        return None, None
    diff = achieved - baseline
    return diff, (100.0 * diff / abs(baseline) if baseline else None)


def beyond_missing(achieved: float | None, baseline: float | None,
                   completeness: float | None, baseline_completeness: float | None
                   ) -> bool | None:
    """Whether the change exceeds what the missing readings could explain (see module doc);
    None when it cannot be told."""
    if achieved is None or baseline is None or completeness is None \
            or baseline_completeness is None:
        return None
    missing = 1.0 - completeness / 100.0
    missing_b = 1.0 - baseline_completeness / 100.0
    return abs(achieved - baseline) > missing * abs(achieved) + missing_b * abs(baseline)


def corner(availability: float | None, uses_per_device: float | None, days: float,
           works_at: float) -> Corner:
    if availability is None or uses_per_device is None:
        return Corner.UNKNOWN
    works = availability >= works_at
    used = uses_per_device >= USED_PER_DEVICE_PER_DAY * days
    if works:
        return Corner.WORKING_AND_USED if used else Corner.WORKS_BUT_UNUSED
    return Corner.USED_BUT_UNRELIABLE if used else Corner.NEITHER
