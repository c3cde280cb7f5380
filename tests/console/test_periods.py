"""The console's period boundaries, computed in the browser with Intl, against the API's own
(`api.kpis.periods.midnight`, zoneinfo): the console asks for whole KPI buckets only if both
agree on every local midnight, including where clocks change at midnight (Havana, Santiago),
by half an hour (Lord Howe) or at odd offsets (Kathmandu, Chatham, St John's)."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser

from api.kpis.periods import midnight
from tests.console.conftest import Server

ZONES = ("Europe/Madrid", "Europe/Lisbon", "UTC", "America/Havana", "America/Santiago",
         "America/St_Johns", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham")
FIRST, DAYS = date(2024, 1, 1), 731  # two years: every change of both


def test_local_midnights_match_the_api(browser: Browser, server: Server) -> None:
    page = browser.new_page()
    try:
        page.goto(server.url + "/")  # the module is served from here
        days = [FIRST + timedelta(days=i) for i in range(DAYS)]
        browser_ms: dict[str, list[int]] = page.evaluate(
            """async ([zones, first, count]) => {
                const { localMidnight } = await import("/console/periods.js");
                const [y, m, d] = first;
                return Object.fromEntries(zones.map((tz) => [tz,
                    [...Array(count).keys()].map((i) => localMidnight(tz, y, m, d + i))]));
            }""", [list(ZONES), [FIRST.year, FIRST.month, FIRST.day], DAYS])
    finally:
        page.close()
    for tz in ZONES:
        expected = [midnight(day, ZoneInfo(tz)) // 1_000_000 for day in days]
        wrong = [(str(day), got - want) for day, got, want
                 in zip(days, browser_ms[tz], expected, strict=True) if got != want]
        assert wrong == [], f"{tz}: (day, browser minus API in ms) {wrong[:5]}"
