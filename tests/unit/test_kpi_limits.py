"""The catalogue's limit values against the law, written out here a second time on purpose:
Directive (EU) 2024/2881, Annex I, Section 1 and Directive 2008/50/EC, Annexes XI and XIV.
A typo in the catalogue (the one place the KPIs, dashboards, alerts and console read) fails
here."""

from __future__ import annotations

import pytest

from api.kpis.definitions import BY_ID, KPIS, Family, Regime

OLD, NEW = Regime.AQD_2008, Regime.AQD_2024
# kpi id -> {(regime, value, averaging, exceedances allowed a calendar year)}
LAW = {
    "no2_hourly_exceedances": {(OLD, 200.0, "hour", 18), (NEW, 200.0, "hour", 3)},
    "no2_daily_exceedances": {(NEW, 50.0, "day", 18)},
    "no2_mean": {(OLD, 40.0, "calendar year", None), (NEW, 20.0, "calendar year", None)},
    "pm10_daily_exceedances": {(OLD, 50.0, "day", 35)},
    "pm10_daily_exceedances_2030": {(NEW, 45.0, "day", 18)},
    "pm10_mean": {(OLD, 40.0, "calendar year", None), (NEW, 20.0, "calendar year", None)},
    "pm25_daily_exceedances": {(NEW, 25.0, "day", 18)},
    "pm25_mean": {(OLD, 25.0, "calendar year", None), (NEW, 10.0, "calendar year", None)},
    "noise_lden": {(Regime.END, 55.0, "year", None), (Regime.WHO_2018, 53.0, "year", None)},
}


def test_every_limit_value_is_the_laws() -> None:
    got = {k.id: {(lim.regime, lim.value, lim.averaging, lim.allowed) for lim in k.limits}
           for k in KPIS if k.limits}
    assert got == LAW


def test_every_kpi_with_limits_is_an_outcome_citing_each_regime() -> None:
    cited = {OLD: "2008/50/EC", NEW: "2024/2881", Regime.END: "2002/49/EC",
             Regime.WHO_2018: "WHO Environmental Noise Guidelines"}
    for kpi_id in LAW:
        k = BY_ID[kpi_id]
        assert k.family is Family.OUTCOME
        for limit in k.limits:
            assert cited[limit.regime] in k.reference, (kpi_id, limit.regime)


@pytest.mark.parametrize("kpi_id", [k for k in LAW if k.endswith(("exceedances",
                                                                   "exceedances_2030"))])
def test_an_exceedance_kpi_counts_against_one_figure_named_in_its_title(kpi_id: str) -> None:
    k = BY_ID[kpi_id]
    assert f"above {k.threshold:g} " in k.title
    assert k.allowances == tuple(sorted(a for *_, a in LAW[kpi_id] if a is not None))


def test_a_mean_has_no_single_threshold() -> None:
    with pytest.raises(ValueError, match="no2_mean has no single limit value"):
        _ = BY_ID["no2_mean"].threshold
    assert BY_ID["no2_mean"].limit_values == (20.0, 40.0)
