"""The API's cache of finished periods: answers kept until a late write into one of their
hours is rolled up, and bounded (the rig and comparisons of `test_rollups.py`)."""

from __future__ import annotations

import pytest

from api.kpis.definitions import KPIS
from api.kpis.periods import Grain
from api.kpis.rollups.cache import ResultCache
from api.kpis.service import KpiResult, compute, compute_many
from tests.contract.test_kpis import PILOT, D, H, T, event, reading
from tests.contract.test_rollups import (
    NOW,
    RAW_BY_DESIGN,
    Rig,
    difference,
    rig,
)

__all__ = ["rig"]  # the fixture, shared
JANUARY = (T - 14 * D, T + 17 * D)  # the seed's month, in Berlin
DECEMBER = (T - 45 * D, T - 14 * D)


async def test_a_cached_past_month_is_answered_anew_after_a_late_write_is_rolled_up(
        rig: Rig) -> None:
    rig.rolled.cache = ResultCache(rig.rolled.rollups)
    await rig.settle()
    ids = [k.id for k in KPIS]

    async def ask(period: tuple[int, int]) -> list[KpiResult]:
        return await compute_many(rig.rolled, PILOT, ids, *period, Grain.MONTH, now_ns=NOW)

    january, december = await ask(JANUARY), await ask(DECEMBER)
    cached = {r.kpi.id for r, again in zip(january, await ask(JANUARY), strict=True)
              if again is r}  # the same answers, not computed again
    assert cached == {k.id for k in KPIS} - RAW_BY_DESIGN
    # A spool replayed weeks later into January: once rolled up, every answer is raw's.
    late = [reading("air_quality", "aq1", T + 3 * D + 10 * H, 500.0, no2=900.0, pm10=95.0,
                    pm25=80.0),
            event(T + 4 * D + 9 * H, "u77", "parking", "use", "term1")]
    assert await rig.store.write(late) == []
    await rig.settle()
    now = await ask(JANUARY)
    for rolled in now:
        raw = await compute(rig.raw, PILOT, rolled.kpi.id, *JANUARY, Grain.MONTH, now_ns=NOW)
        assert difference(rolled, raw) is None
    changed = {r.kpi.id for r, old in zip(now, january, strict=True)
               if [v.value for v in r.values] != [v.value for v in old.values]}
    assert {"usage_events", "pm25_mean", "ingest_delay_p95"} <= changed
    # December holds none of the recomputed hours: its answers stay cached.
    assert all(a is b for a, b in zip(await ask(DECEMBER), december, strict=True)
               if a.source == "rollup")


async def test_the_result_cache_is_bounded_and_drops_the_least_recently_used(
        rig: Rig) -> None:
    rig.rolled.cache = cache = ResultCache(rig.rolled.rollups, size=3)
    await rig.settle()
    ids = ["usage_events", "pm25_mean", "noise_lden", "availability", "utilisation"]

    async def ask(*kpis: str) -> list[KpiResult]:
        return await compute_many(rig.rolled, PILOT, kpis, *JANUARY, Grain.MONTH, now_ns=NOW)

    first = {r.kpi.id: r for r in await ask(*ids)}
    assert len(cache) == 3  # the last three
    assert all(r is first[r.kpi.id] for r in await ask(*ids[2:]))
    [noise] = await ask("noise_lden")  # now the most recently used; availability the least
    [usage] = await ask("usage_events")
    assert noise is first["noise_lden"] and usage is not first["usage_events"]
    [utilisation, noise_again, usage_again] = await ask("utilisation", "noise_lden",
                                                        "usage_events")
    assert utilisation is first["utilisation"] and noise_again is noise and usage_again is usage
    [availability] = await ask("availability")  # the one pushed out
    assert availability is not first["availability"] and len(cache) == 3
    with pytest.raises(ValueError, match="at least one"):
        ResultCache(rig.rolled.rollups, size=0)
