// The pilot's devices on a map drawn in plain SVG from their registered coordinates, and
// links to the open interfaces that publish them. No tile server can be reached from many
// pilot sites (nor from where the tests and screenshots run), and the console's policy allows
// requests to this origin only: the map is the devices' own geometry, projected here.
//
// The devices come from the OGC API – Features inventory (`/ogc/collections/devices/items`),
// which answers any role's key for the pilots it may read, with coordinates, kind or service
// and last seen: the map shows what the open inventory publishes, for a viewer too (the
// operator-only `/api/v1/devices` would leave city staff without one).

import { PALETTE, SHAPES, el, legend, mark, niceStep } from "./charts.js";
import { ago, describe } from "./periods.js";
import { formatNumber, node } from "./views.js";

const PAGE = 1000; // the OGC API's largest page
const WIDTH = 720; // SVG units when the container has no width yet (it is drawn hidden)
const MARGIN = 40; // px around the devices' bounding box: dots and labels stay inside
const EARTH_RADIUS_M = 6_371_008.8; // the mean radius (IUGG)
const RAD = Math.PI / 180;
const MIN_SPAN_M = 400; // one device, or devices on one spot: a neighbourhood around them
const LABELLED = 20; // up to this many dots carry their device id; more would overlap
const UNLOCATED_NAMED = 30;

// Every device of the pilot, page after page (offsets of our own: the API's `next` links are
// absolute under CITYPILOT_PUBLIC_URL, which need not be the console's origin).
export async function inventory(api, pilot) {
  const devices = [];
  for (let offset = 0; ; offset += PAGE) {
    const page = await api.json("/ogc/collections/devices/items", { pilot, limit: PAGE, offset });
    devices.push(...page.features.map(fromFeature));
    if (!page.features.length || devices.length >= page.numberMatched) return devices;
  }
}

function fromFeature(feature) {
  const p = feature.properties;
  const [lon, lat] = feature.geometry ? feature.geometry.coordinates : [null, null];
  return {
    id: p.device, gateway: p.gateway, kind: p.kind || p.service || "unknown kind", lat, lon,
    lastSeen: p.last_seen, availability: p.availability_30d,
  };
}

// Equirectangular at the devices' mean latitude: a degree of longitude is cos(latitude) of a
// degree of latitude, so across a city metres are metres both ways (the error over a few
// kilometres is far below a dot). A pilot across the antimeridian is drawn in one piece.
export function project(located, width) {
  const lons = located.map((d) => d.lon);
  const wraps = Math.max(...lons) - Math.min(...lons) > 180;
  const meanLat = located.reduce((sum, d) => sum + d.lat, 0) / located.length;
  const k = Math.cos(meanLat * RAD);
  const metres = located.map((d) => ({
    x: (wraps && d.lon < 0 ? d.lon + 360 : d.lon) * RAD * EARTH_RADIUS_M * k,
    y: d.lat * RAD * EARTH_RADIUS_M,
  }));
  const xs = metres.map((m) => m.x);
  const ys = metres.map((m) => m.y);
  const spanX = Math.max(Math.max(...xs) - Math.min(...xs), MIN_SPAN_M);
  const spanY = Math.max(Math.max(...ys) - Math.min(...ys), MIN_SPAN_M / 4);
  const inner = width - 2 * MARGIN;
  // As tall as the devices' spread asks, within what a page can show beside the rest.
  const height = Math.round(Math.min(Math.max(inner * (spanY / spanX), 240), 480) + 2 * MARGIN);
  const scale = Math.min(inner / spanX, (height - 2 * MARGIN) / spanY); // px per metre
  const midX = (Math.max(...xs) + Math.min(...xs)) / 2;
  const midY = (Math.max(...ys) + Math.min(...ys)) / 2;
  return {
    width, height, scale,
    points: metres.map((m) => ({ x: width / 2 + (m.x - midX) * scale,
      y: height / 2 - (m.y - midY) * scale })),
  };
}

function distance(m) {
  return m < 1000 ? `${m} m` : `${formatNumber(m / 1000, "")} km`;
}

// A round length (1, 2 or 5 times a power of ten metres) about a fifth of the map's width.
function scaleBar(svg, { width, height, scale }) {
  const metres = niceStep((width - 2 * MARGIN) / scale, 5);
  const length = metres * scale;
  const x = 12;
  const y = height - 14;
  const bar = el("g", { class: "scale", "data-metres": metres }, svg);
  el("path", { d: `M${x},${y - 5}v5h${length.toFixed(1)}v-5`, fill: "none" }, bar);
  el("text", { x: x + length + 6, y: y + 1 }, bar, distance(metres));
}

function northArrow(svg, width) {
  const g = el("g", { class: "north", "aria-hidden": "true" }, svg);
  el("path", { d: `M${width - 22},14l6,16h-12z` }, g);
  el("text", { x: width - 22, y: 44, "text-anchor": "middle" }, g, "N");
}

function seen(device, tz) {
  if (!device.lastSeen) return "never seen";
  const at = Date.parse(device.lastSeen);
  return `last seen ${ago(at)} (${describe(at, tz, true)})`;
}

function tooltip(device, tz) {
  const uptime = device.availability === null || device.availability === undefined ? ""
    : ` · availability over 30 days ${formatNumber(device.availability, "%")}%`;
  return `${device.id} · ${device.kind} · gateway ${device.gateway} · ${seen(device, tz)}`
    + uptime;
}

function unlocatedNote(unlocated) {
  const names = unlocated.map((d) => d.id).sort();
  const shown = names.slice(0, UNLOCATED_NAMED).join(", ");
  const more = names.length > UNLOCATED_NAMED ? ` and ${names.length - UNLOCATED_NAMED} more` : "";
  const count = names.length === 1 ? "1 device" : `${names.length} devices`;
  return node("p", "unlocated muted", `${count} without coordinates: ${shown}${more}.`);
}

// The map's text alternative, for the keyboard and screen readers (a mark's tooltip needs a
// mouse), and the coordinates to copy.
function locatedTable(located, tz) {
  const details = node("details", "located");
  details.append(node("summary", "", `The ${located.length} located devices as a table`));
  const table = node("table");
  const head = node("tr");
  for (const name of ["Device", "Kind or service", "Latitude", "Longitude", "Last seen"]) {
    const th = node("th", "", name);
    th.scope = "col";
    head.append(th);
  }
  const body = node("tbody");
  for (const d of [...located].sort((a, b) => a.id.localeCompare(b.id))) {
    const row = node("tr");
    row.dataset.device = d.id;
    const id = node("th", "", d.id);
    id.scope = "row";
    row.append(id, node("td", "", d.kind), node("td", "", String(d.lat)),
      node("td", "", String(d.lon)), node("td", "", seen(d, tz).replace(/^last seen /, "")));
    body.append(row);
  }
  const thead = node("thead");
  thead.append(head);
  table.append(thead, body);
  const scroll = node("div", "scroll");
  scroll.append(table);
  details.append(scroll);
  return details;
}

// devices: what `inventory` gives; title: the pilot's name, for the map's text alternative.
export function drawMap(container, devices, { tz, title }) {
  container.replaceChildren();
  const located = devices.filter((d) => d.lat !== null && d.lon !== null);
  const unlocated = devices.filter((d) => d.lat === null || d.lon === null);
  if (!devices.length) {
    container.append(node("p", "empty muted", "No device is registered or has sent data "
      + "for this pilot."));
    return;
  }
  if (!located.length) {
    container.append(node("p", "empty muted", "No device of this pilot has coordinates: "
      + "give them lat and lon in the pilot registry to see them here."),
    unlocatedNote(unlocated));
    return;
  }
  const kinds = [...new Set(located.map((d) => d.kind))].sort();
  const style = new Map(kinds.map((kind, i) => [kind, { color: PALETTE[i % PALETTE.length],
    shape: SHAPES[Math.floor(i / PALETTE.length) % SHAPES.length] }]));
  // As wide in SVG units as on the screen: labels keep their size in pixels.
  const map = project(located, Math.round(container.clientWidth) || WIDTH);
  const { width } = map;
  const counts = kinds.map((kind) => `${located.filter((d) => d.kind === kind).length} ${kind}`);
  const svg = el("svg", { viewBox: `0 0 ${width} ${map.height}`, role: "img",
    "aria-label": `Map of the ${located.length} located devices of ${title}: ${counts.join(", ")}` });
  el("rect", { x: 0.5, y: 0.5, width: width - 1, height: map.height - 1, rx: 6, class: "frame" },
    svg);
  const labelled = located.length <= LABELLED;
  located.forEach((d, i) => {
    const { x, y } = map.points[i];
    const { color, shape } = style.get(d.kind);
    const dot = mark(svg, shape, Number(x.toFixed(1)), Number(y.toFixed(1)), 7, {
      fill: color, class: `dot ${shape}`, "data-device": d.id, "data-kind": d.kind,
      "data-lat": d.lat, "data-lon": d.lon });
    el("title", {}, dot, tooltip(d, tz));
    if (labelled) {
      // Labels to the left of dots in the east half, so they stay inside the frame.
      const east = x > width / 2;
      el("text", { x: (east ? x - 10 : x + 10).toFixed(1), y: (y + 4).toFixed(1), class: "label",
        "text-anchor": east ? "end" : "start", "aria-hidden": "true" }, svg, d.id);
    }
  });
  scaleBar(svg, map);
  northArrow(svg, width);
  container.append(svg, legend(kinds.map((kind) => ({
    name: `${kind} (${located.filter((d) => d.kind === kind).length})`, ...style.get(kind) }))));
  container.append(locatedTable(located, tz));
  if (unlocated.length) container.append(unlocatedNote(unlocated));
}

// The open interfaces serving this pilot, as links on this server. A link followed in the
// browser carries no key: it answers only if the registry opens the pilot.
export function openLinks(list, pilot, [start, end]) {
  const usage = new URLSearchParams({ pilot, start, end });
  const links = [
    ["OGC API – Features: the infrastructure inventory", "/ogc"],
    ["This pilot's devices as GeoJSON", `/ogc/collections/devices/items?${
      new URLSearchParams({ pilot, limit: 100 })}`],
    ["Service use of the chosen period, small counts suppressed", `/open/v1/usage?${usage}`],
    ["SensorThings API 1.1: devices, datastreams and observations", "/sta/v1.1"],
    ["DCAT-AP catalogue for open-data portals (Turtle)", "/catalog.ttl"],
  ];
  list.replaceChildren(...links.map(([name, href]) => {
    const item = node("li");
    const link = node("a", "", name);
    link.href = href;
    // Shown with its colons: valid in a query, and easier to read than %3A.
    const url = new URL(href, window.location.href).href.replaceAll("%3A", ":");
    item.append(link, node("br"), node("code", "", url));
    return item;
  }));
}
