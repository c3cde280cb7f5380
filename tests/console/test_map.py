"""The console's device map and its links to the open interfaces, in a real browser.

The map is SVG drawn from the registry's coordinates (no tiles, no request beyond citypilot):
one dot per located device, east to the right and north up, distances in one scale both ways
(an equirectangular projection at the devices' mean latitude), checked against great-circle
distances and the scale bar; a legend of kinds, a tooltip per dot, the devices without
coordinates named, an empty state for a pilot without any. With CONSOLE_MAP_SCREENSHOT=<path>
the map's card is saved there (`CONSOLE_MAP_SCREENSHOT=docs/console-map.png` makes the
README's).
"""

from __future__ import annotations

import math
import os
import re
from itertools import combinations
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.sync_api import Browser

from tests.console.conftest import OTHER, PILOT, Server, Visit
from tests.console.test_console import sign_in, wait_loaded

EARTH_RADIUS_M = 6_371_008.8
CSP_WATCH = """() => { window.cspViolations = [];
    document.addEventListener("securitypolicyviolation",
        (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`)); }"""


def great_circle_m(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Haversine: independent of the console's flat projection."""
    p1, p2 = math.radians(a["lat"]), math.radians(b["lat"])
    dp, dl = p2 - p1, math.radians(b["lon"] - a["lon"])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def dots(visit: Visit) -> dict[str, dict[str, Any]]:
    """The map's dots by device: where drawn (the centre, in SVG units), the coordinates, kind,
    mark (colour and shape) and tooltip."""
    found: list[dict[str, Any]] = visit.page.locator("#map .dot").evaluate_all(
        """(all) => all.map((c) => { const box = c.getBBox(); return {
            device: c.dataset.device, kind: c.dataset.kind, lat: Number(c.dataset.lat),
            lon: Number(c.dataset.lon), x: box.x + box.width / 2, y: box.y + box.height / 2,
            mark: `${c.getAttribute("fill")} ${[...c.classList].join(" ")}`,
            title: c.querySelector("title").textContent }; })""")
    by_device = {d["device"]: d for d in found}
    assert len(by_device) == len(found), "one dot per device"
    return by_device


def kind_of(device: dict[str, Any]) -> str:
    return str(device["kind"] or device["service"])


def links(visit: Visit) -> dict[str, str]:
    """The open-interface links by path: their href (relative) and the URL they show."""
    out: dict[str, str] = {}
    for item in visit.page.locator("#open-links li").all():
        href = str(item.locator("a").get_attribute("href"))
        shown = item.locator("code").inner_text()
        assert shown == visit.page.evaluate("(h) => new URL(h, location.href).href",
                                            href).replace("%3A", ":")
        out[urlsplit(href).path] = href
    return out


def follow(server: Server, href: str, who: str) -> httpx.Response:
    """A link as a script with a key would follow it (its query as written)."""
    response = httpx.get(server.url + href, timeout=30,
                         headers={"Authorization": f"Bearer {server.keys[who]}"})
    assert response.status_code == 200, (href, response.text)
    return response


def check_links(visit: Visit, server: Server, pilot: str) -> dict[str, str]:
    found = links(visit)
    assert set(found) == {"/ogc", "/ogc/collections/devices/items", "/open/v1/usage",
                          "/sta/v1.1", "/catalog.ttl"}
    for path in ("/ogc/collections/devices/items", "/open/v1/usage"):
        assert parse_qs(urlsplit(found[path]).query)["pilot"] == [pilot], found[path]
    # What a script given the link and a key gets: the API accepts the link as written.
    usage = follow(server, found["/open/v1/usage"], "viewer" if pilot == PILOT else "operator")
    assert usage.json()["pilot"] == pilot
    return found


def test_the_map_places_each_located_device(visit: Visit, server: Server,
                                            tmp_path: Path) -> None:
    page = visit.page
    page.evaluate(CSP_WATCH)
    sign_in(visit, server.keys["operator"])
    page.get_by_label("Pilot", exact=True).select_option(PILOT)
    wait_loaded(page)
    registry = server.get("/api/v1/devices", "operator", pilot=PILOT).json()
    located = {d["id"]: d for d in registry if d["lat"] is not None}
    unlocated = sorted(d["id"] for d in registry if d["lat"] is None)
    assert len(located) >= 8 and len(unlocated) == 1, registry  # as the fixture placed them

    drawn = dots(visit)
    assert set(drawn) == set(located)
    width, height = (float(v) for v in str(
        page.locator("#map > svg").get_attribute("viewBox")).split()[2:])
    for device, dot in drawn.items():
        api = located[device]
        assert (dot["lat"], dot["lon"], dot["kind"]) == (api["lat"], api["lon"], kind_of(api))
        assert 0 < dot["x"] < width and 0 < dot["y"] < height, dot
        assert device in dot["title"] and kind_of(api) in dot["title"], dot["title"]
        assert "last seen" in dot["title"] and api["gateway"] in dot["title"], dot["title"]
    # One mark (colour and shape) per kind, each kind its own.
    marks = {dot["kind"]: dot["mark"] for dot in drawn.values()}
    assert all(marks[dot["kind"]] == dot["mark"] for dot in drawn.values())
    assert len(set(marks.values())) == len(marks), marks
    # East is right, north is up; one scale both ways (SVG units per metre on the ground).
    scales = []
    for a, b in combinations(drawn.values(), 2):
        if a["lon"] != b["lon"]:
            assert (a["x"] < b["x"]) == (a["lon"] < b["lon"]), (a, b)
        if a["lat"] != b["lat"]:
            assert (a["y"] > b["y"]) == (a["lat"] < b["lat"]), (a, b)
        scales.append(math.dist((a["x"], a["y"]), (b["x"], b["y"])) / great_circle_m(a, b))
    assert max(scales) / min(scales) < 1.01, (min(scales), max(scales))
    # The scale bar: a round length, drawn at that scale.
    bar = page.locator("#map g.scale")
    metres = float(str(bar.get_attribute("data-metres")))
    assert re.fullmatch(r"[125]0*", f"{metres:g}"), metres
    length = float(re.findall(r"h([\d.]+)", str(bar.locator("path").get_attribute("d")))[0])
    assert abs(length / metres / (sum(scales) / len(scales)) - 1) < 0.01
    shown = bar.locator("text").text_content()
    assert shown == (f"{metres:g} m" if metres < 1000 else f"{metres / 1000:g} km"), shown

    # The legend names every kind on the map, with its count; the rest are listed by name.
    kinds = sorted({kind_of(d) for d in located.values()})
    assert page.locator("#map .legend li").all_inner_texts() == [
        f"{k} ({sum(kind_of(d) == k for d in located.values())})" for k in kinds]
    assert page.locator("#map .unlocated").inner_text() == (
        f"1 device without coordinates: {unlocated[0]}.")
    # The same devices as a table, for the keyboard and screen readers.
    page.locator("#map details.located summary").click()
    rows = page.locator("#map details.located tbody tr").all()
    assert [r.get_attribute("data-device") for r in rows] == sorted(located)
    for row in rows:
        cells = row.locator("th, td").all_inner_texts()
        api = located[cells[0]]
        assert (cells[1], float(cells[2]), float(cells[3])) == (kind_of(api), api["lat"],
                                                                 api["lon"])

    # The open interfaces of this pilot; the GeoJSON link gives the devices the map shows.
    found = check_links(visit, server, PILOT)
    geojson = follow(server, found["/ogc/collections/devices/items"], "operator").json()
    assert {f["properties"]["device"] for f in geojson["features"]
            if f["geometry"]} == set(located)
    asked = {urlsplit(u).path for u in visit.requests}
    assert "/ogc/collections/devices/items" in asked
    assert all(u.startswith(server.url) for u in visit.requests), "no tiles, nothing outside"
    assert page.evaluate("window.cspViolations") == []
    assert visit.problems == []
    page.locator("#map details.located summary").click()  # closed again, for the screenshot
    card = page.locator("#where")
    card.scroll_into_view_if_needed()
    card.screenshot(path=tmp_path / "map.png")
    if os.environ.get("CONSOLE_MAP_SCREENSHOT"):
        card.screenshot(path=os.environ["CONSOLE_MAP_SCREENSHOT"])

    # At phone width the map is drawn for the phone's width: the page does not scroll sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    wait_loaded(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert set(dots(visit)) == set(located)
    svg_width = float(str(page.locator("#map > svg").get_attribute("viewBox")).split()[2])
    assert abs(svg_width - page.locator("#map").bounding_box()["width"]) <= 1  # type: ignore[index]
    card.screenshot(path=tmp_path / "map-phone.png")
    assert visit.problems == []


def test_a_viewer_sees_the_same_map(visit: Visit, server: Server) -> None:
    sign_in(visit, server.keys["viewer"])
    registry = server.get("/api/v1/devices", "operator", pilot=PILOT).json()
    assert set(dots(visit)) == {d["id"] for d in registry if d["lat"] is not None}
    check_links(visit, server, PILOT)
    assert visit.problems == []


def test_a_pilot_without_coordinates_has_an_empty_map(visit: Visit, server: Server) -> None:
    page = visit.page
    page.evaluate(CSP_WATCH)
    sign_in(visit, server.keys["operator"])
    assert page.locator("#pilot").input_value() == OTHER  # the first pilot, alphabetically
    names = sorted(d["id"] for d in server.get("/api/v1/devices", "operator",
                                                pilot=OTHER).json())
    assert names

    def empty() -> None:
        assert page.locator("#map .dot").count() == 0
        assert page.locator("#map .empty").inner_text().startswith(
            "No device of this pilot has coordinates")
        assert page.locator("#map .unlocated").inner_text() == (
            f"{len(names)} devices without coordinates: {', '.join(names)}.")
        check_links(visit, server, OTHER)

    empty()
    # Another pilot's map replaces it, and back again.
    page.get_by_label("Pilot", exact=True).select_option(PILOT)
    wait_loaded(page)
    assert page.locator("#map .dot").count() >= 8
    page.get_by_label("Pilot", exact=True).select_option(OTHER)
    wait_loaded(page)
    empty()
    assert page.evaluate("window.cspViolations") == []
    assert visit.problems == []


def test_the_projection_keeps_edge_cases_in_one_piece(browser: Browser, server: Server) -> None:
    """One device, devices on one spot, a pilot across the antimeridian, one far north."""
    page = browser.new_page()
    try:
        page.goto(server.url + "/")  # the module is served from here
        got: dict[str, Any] = page.evaluate("""async () => {
            const { project } = await import("/console/map.js");
            const at = (lat, lon) => ({ lat, lon });
            return {
              one: project([at(39.47, -0.37)], 600),
              spot: project([at(39.47, -0.37), at(39.47, -0.37)], 600),
              fiji: project([at(-17.8, 179.99), at(-17.8, -179.99)], 600),
              north: project([at(69.65, 18.95), at(69.65, 18.97), at(69.66, 18.95)], 600),
            };
        }""")
    finally:
        page.close()
    for name, shape in got.items():
        assert all(math.isfinite(v) for p in shape["points"] for v in (p["x"], p["y"])), name
        assert all(0 < p["x"] < 600 and 0 < p["y"] < shape["height"]
                   for p in shape["points"]), (name, shape)
    assert got["one"]["points"] == [{"x": 300, "y": got["one"]["height"] / 2}]
    # Across the antimeridian: the east one right of the west one, the 2 km between them
    # drawn as 2 km (not as the 40,000 km the other way round).
    west, east = got["fiji"]["points"]
    ground = great_circle_m({"lat": -17.8, "lon": 179.99}, {"lat": -17.8, "lon": -179.99})
    assert abs((east["x"] - west["x"]) / got["fiji"]["scale"] / ground - 1) < 0.01, got["fiji"]
    # Tromsø: 0.02° of longitude is cos(69.65°) of 0.02° of latitude on the ground.
    origin, lon_step, lat_step = got["north"]["points"]
    ratio = (lon_step["x"] - origin["x"]) / (2 * (origin["y"] - lat_step["y"]))
    assert abs(ratio - math.cos(math.radians(69.65))) < 0.01, ratio
