"""The built-in console in a real browser (Debian's chromium driven by Playwright) against a
live `citypilot api` over a SQLite store holding three weeks of simulated pilot data.

It checks what a person would: the tiles show the API's figures for the pilot's own weeks, the
fleet table lists the simulated devices with silent ones first, dead letters show their
reasons, the exports download, and a viewer's console shows KPIs and exports but neither
asks for nor shows devices and dead letters. No console error and no failed request is
allowed. Screenshots land in the test's tmp_path; with CONSOLE_SCREENSHOT=<path> the top of
the operator's is also saved there (`CONSOLE_SCREENSHOT=docs/console.png` makes the README's).
"""

from __future__ import annotations

import os
import subprocess
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import Page

from api.kpis.definitions import BY_ID, KPIS, Family
from tests.console.conftest import PILOT, ZONES, Server, Visit


def sign_in(visit: Visit, key: str) -> None:
    field_ = visit.page.get_by_label("API key")
    field_.fill(key)
    field_.press("Enter")  # the keyboard path: no mouse needed
    wait_loaded(visit.page)


def wait_loaded(page: Page) -> None:
    page.locator('#console[aria-busy="false"]').wait_for(timeout=20_000)


def weeks(tz: str, back: int) -> tuple[datetime, datetime, datetime]:
    """The local Mondays that bound the week `back` weeks ago (0: this week): the start of
    the week before it, its own start, and its end."""
    zone = ZoneInfo(tz)
    today = datetime.now(zone).date()
    monday = today - timedelta(days=today.weekday() + 7 * back)

    def at(day: date) -> datetime:
        return datetime.combine(day, datetime.min.time(), tzinfo=zone)

    return at(monday - timedelta(days=7)), at(monday), at(monday + timedelta(days=7))


def breached(kpi_id: str, value: float | None) -> list[str]:
    """The regimes whose limit a tile's figure breaks: a count beyond its yearly allowance,
    a mean or level (in the KPI's unit) above the limit value; `exceedances_left` below 0."""
    kpi = BY_ID[kpi_id]
    if value is None:
        return []
    if kpi_id == "exceedances_left":
        return ["allowance used up"] if value < 0 else []
    return [lim.regime.value for lim in kpi.limits
            if (value > lim.allowed if lim.allowed is not None
                else lim.unit == kpi.unit and value > lim.value)]


def raw(text: str) -> float | None:
    """A tile's data-value: the number the browser got from the API, unrounded."""
    return float(text) if text else None


def api_figure(body: dict[str, object], start: datetime, agg: str) -> float | None:
    """The API's figure for the bucket starting at `start`: its one value, or the sum or the
    highest value over a dimension (the tile's `agg`)."""
    values = [v["value"] for v in body["values"]  # type: ignore[attr-defined]
              if datetime.fromisoformat(v["start"]) == start and v["value"] is not None]
    if not values:
        return None
    if agg in ("max", "min"):
        return float(max(values) if agg == "max" else min(values))
    assert agg == "sum" or len(values) == 1, (agg, values)
    return float(sum(values))


def check_tiles(visit: Visit, server: Server, who: str, back: int) -> int:
    """Every tile holds the API's figures for the pilot's local weeks; the number checked."""
    before, start, end = weeks(ZONES[PILOT], back)
    tiles = visit.page.locator("li.tile")
    assert tiles.count() >= 8
    for i in range(tiles.count()):
        tile = tiles.nth(i)
        kpi, data = tile.get_attribute("data-kpi"), tile.evaluate("t => ({...t.dataset})")
        assert data["state"] == "ready", (kpi, data)
        assert (datetime.fromisoformat(data["start"]), datetime.fromisoformat(data["end"]),
                data["grain"]) == (before, end, "week"), (kpi, data)
        body = server.get(f"/api/v1/kpis/{kpi}", who, pilot=PILOT, start=data["start"],
                          end=data["end"], grain="week").json()
        now, previous = (api_figure(body, start, data["agg"]),
                         api_figure(body, before, data["agg"]))
        assert (raw(data["value"]), raw(data["previous"])) == (now, previous), (kpi, body)
        shown = tile.locator(".number").inner_text()
        if now is None:
            assert shown == "—"
            continue
        digits = len(shown.partition(".")[2])
        assert abs(float(shown.replace(",", "")) - now) <= 0.5 * 10**-digits + 1e-9, (kpi, shown)
    return tiles.count()


def download(visit: Visit, label: str, tmp_path: Path) -> tuple[str, bytes]:
    with visit.page.expect_download() as started:
        visit.page.get_by_role("button", name=label).click()
    dl = started.value
    target = tmp_path / dl.suggested_filename
    dl.save_as(target)
    return dl.suggested_filename, target.read_bytes()


def test_operator_sees_kpis_fleet_dead_letters_and_exports(
        visit: Visit, server: Server, tmp_path: Path) -> None:
    page = visit.page
    sign_in(visit, server.keys["operator"])
    assert page.locator("#pilot option").all_inner_texts() == [
        "Harbour 01 (harbour-01)", "Pilot 01 (pilot-01)"]
    page.get_by_label("Pilot", exact=True).select_option(PILOT)
    wait_loaded(page)
    # This week so far against the same part of last week, in the pilot's own weeks.
    before, start, _ = weeks(ZONES[PILOT], 0)
    for tile in page.locator("li.tile").all():
        data = tile.evaluate("t => ({...t.dataset})")
        assert data["state"] == "ready", data
        assert datetime.fromisoformat(data["start"]) == start, data
        assert datetime.fromisoformat(data["comparedStart"]) == before, data
        elapsed = datetime.fromisoformat(data["end"]) - start
        assert datetime.fromisoformat(data["comparedEnd"]) - before == elapsed, data
        assert abs(datetime.fromisoformat(data["end"]).timestamp() - time.time()) < 120, data
    usage = page.locator('li.tile[data-kpi="usage_events"] .number').inner_text()
    assert float(usage.replace(",", "")) > 0

    # The fleet: every simulated device, silent ones first, as the API sees them.
    rows = page.locator("#fleet-table tbody tr")
    listed = [r.get_attribute("data-device") for r in rows.all()]
    assert set(listed) == server.devices and len(listed) == len(server.devices)
    online = [r.get_attribute("data-online") == "true" for r in rows.all()]
    assert online == sorted(online), "silent devices must come first"
    api_devices = {d["id"]: d for d in server.get("/api/v1/devices", "operator",
                                                   pilot=PILOT).json()}
    now = time.time()
    for device, shown in zip(listed, online, strict=True):
        d = api_devices[device]
        # A device whose silence reaches twice its interval in this very minute may flip.
        margin = now - datetime.fromisoformat(d["last_seen"]).timestamp() - 2 * d["interval_s"]
        if abs(margin) > 60:
            assert shown == d["online"], d
    assert page.locator("#fleet-summary").inner_text().startswith(
        f"{sum(online)} of {len(listed)} devices online")

    # Dead letters with their reasons, the ones the API lists for this pilot.
    letters = server.get("/api/v1/deadletters", "operator", limit=200).json()
    ours = [x["reason"] for x in letters if x["topic"].startswith(f"citypilot/v1/{PILOT}/")]
    assert ours, "the simulated faults make dead letters"
    shown_reasons = page.locator("#dl-table code.reason").all_inner_texts()
    assert shown_reasons == ours[:20]

    # Charts: one line per simulated service, and the chosen KPI.
    series = page.locator("#usage-chart path[data-series]")
    assert {s.get_attribute("data-series") for s in series.all()} == server.services
    page.get_by_label("KPI", exact=True).select_option("devices_online")
    page.locator('#metric-chart path[data-series="Devices online"]').wait_for()

    page.screenshot(path=tmp_path / "operator.png", full_page=True)
    if os.environ.get("CONSOLE_SCREENSHOT"):  # the README's: tiles, charts, fleet
        page.screenshot(path=os.environ["CONSOLE_SCREENSHOT"], full_page=True,
                        clip={"x": 0, "y": 0, "width": 1280, "height": 1750})

    # Last week against the week before: whole weeks, so every figure is fixed.
    page.get_by_label("Period", exact=True).select_option("week:1")
    wait_loaded(page)
    assert check_tiles(visit, server, "operator", back=1) >= 9
    # The outcome family: a tile for every outcome KPI of the catalogue, air quality and noise
    # with a figure (the pilot has a station of each), every limit value with its regime.
    outcome = page.locator("#tiles-outcome li.tile").all()
    breaches = 0
    assert [t.get_attribute("data-kpi") for t in outcome] == [
        k.id for k in KPIS if k.family is Family.OUTCOME]
    for tile in outcome:
        kpi = BY_ID[str(tile.get_attribute("data-kpi"))]
        if kpi.limits:
            assert raw(str(tile.get_attribute("data-value"))) is not None, kpi.id
        shown = tile.locator("p.limit").all_text_contents()
        assert [text.split(":")[0] for text in shown] == [
            lim.regime.value for lim in kpi.limits], kpi.id
        # A figure beyond a limit value says so in words, naming the regime; none otherwise.
        broken = breached(kpi.id, raw(str(tile.get_attribute("data-value"))))
        assert tile.get_attribute("data-breaches") == str(len(broken)), kpi.id
        warning = " ".join(tile.locator("p.breach").all_text_contents())
        assert all(regime in warning for regime in broken), (kpi.id, warning)
        breaches += len(broken)
    assert breaches > 0  # the simulated pilot's noise is above the END and WHO levels
    page.get_by_label("KPI", exact=True).select_option("exceedances_left")
    page.locator('#metric-chart path[data-series*="pm25_daily_exceedances '
                 'Directive (EU) 2024/2881"]').first.wait_for(state="attached")  # flat: no height

    name, csv_bytes = download(visit, "Download CSV", tmp_path)
    assert name.startswith(f"citypilot-kpis-{PILOT}-") and name.endswith(".csv")
    lines = csv_bytes.decode().splitlines()
    assert lines[0] == ("kpi,title,unit,pilot,timezone,start,end,service,kind,gateway,device,"
                        "indicator,regime,value,reason")
    assert any(line.startswith("usage_events,") for line in lines[1:])
    name, xlsx = download(visit, "Download XLSX", tmp_path)
    assert name.endswith(".xlsx") and xlsx[:2] == b"PK"
    assert "Downloaded" in page.locator("#export-status").inner_text()
    # The evaluation report of the chosen period (last week, the week before as baseline).
    name, pdf = download(visit, "Report (PDF)", tmp_path)
    week = date.fromisoformat(str(page.locator("#tiles-pull li.tile").first  # the week before
                                  .get_attribute("data-start"))[:10]) + timedelta(7)
    assert name == f"citypilot-evaluation-{PILOT}-{week:%Y%m%d}-{week + timedelta(7):%Y%m%d}.pdf"
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode()
    assert "Pilot 01" in text and "Baseline" in text, text[:500]
    name, html = download(visit, "Report (HTML)", tmp_path)
    assert name.endswith(".html") and b"<html" in html[:200]

    # At phone width the page fits the screen: no sideways scrolling of the page itself.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()  # the key is in sessionStorage: the console opens straight away
    wait_loaded(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=tmp_path / "operator-phone.png")
    page.screenshot(path=tmp_path / "operator-phone-full.png", full_page=True)
    assert visit.problems == []


def test_viewer_sees_kpis_and_exports_but_no_fleet(
        visit: Visit, server: Server, tmp_path: Path) -> None:
    page = visit.page
    sign_in(visit, server.keys["viewer"])
    assert page.locator("#who").inner_text() == f"city staff · viewer · pilots {PILOT}"
    assert page.locator("#pilot option").all_inner_texts() == ["Pilot 01 (pilot-01)"]
    assert page.locator("#fleet").is_hidden() and page.locator("#deadletters").is_hidden()
    assert page.get_by_role("button", name="Download CSV").is_visible()
    page.get_by_label("Period", exact=True).select_option("week:1")
    wait_loaded(page)
    check_tiles(visit, server, "viewer", back=1)
    _, csv_bytes = download(visit, "Download CSV", tmp_path)
    assert csv_bytes.decode().startswith("kpi,title,unit,pilot")
    page.screenshot(path=tmp_path / "viewer.png", full_page=True)
    asked = {urlsplit(u).path for u in visit.requests}
    assert "/api/v1/kpis/usage_events" in asked
    assert not asked & {"/api/v1/devices", "/api/v1/deadletters", "/api/v1/readings"}, asked
    assert visit.problems == []
    # Forgetting the key leaves nothing behind in the tab.
    page.get_by_role("button", name="Forget key").click()
    assert page.get_by_label("API key").is_visible() and page.locator("#console").is_hidden()
    assert page.evaluate("sessionStorage.getItem('citypilot.key')") is None


def test_a_wrong_key_is_refused_in_words(visit: Visit) -> None:
    page = visit.page
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Open").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "This key was not accepted: unknown API key" in alert.inner_text()
    assert page.locator("#console").is_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    # The one 401 is the answer to the wrong key; nothing else failed.
    assert [p for p in visit.problems if "401" not in p] == []


def test_console_files_are_served_with_a_strict_policy(server: Server) -> None:
    page = httpx.get(server.url + "/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    for name, media_type in (("app.js", "text/javascript"), ("console.css", "text/css"),
                             ("favicon.svg", "image/svg+xml")):
        asset = httpx.get(f"{server.url}/console/{name}", timeout=10)
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(media_type)
        assert asset.headers["x-content-type-options"] == "nosniff"
    for name in ("missing.js", "..%2Fapp.py", "%2e%2e", "APP.JS", "app.py"):
        missing = httpx.get(f"{server.url}/console/{name}", timeout=10)
        assert missing.status_code == 404, name
        assert missing.headers["content-type"] == "application/problem+json"
