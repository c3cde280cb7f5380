// The console: asks /api/v1/me who the key is, then requests only what that key's role and
// pilots may read, so a viewer (city staff) never meets a 403 and never sees an empty fleet
// table. The key lives in sessionStorage: it survives a reload, not the closing of the tab.

import { ApiError, client } from "./api.js";
import { lineChart } from "./charts.js";
import { drawMap, inventory, openLinks } from "./map.js";
import { chartWindow, describe, isoLocal, periodPair } from "./periods.js";
import {
  deadLetterRow, emptyTile, figure, fillTile, fleetOrder, fleetRow, formatNumber, node,
  tilesOf,
} from "./views.js";

const KEY = "citypilot.key";
const $ = (selector) => document.querySelector(selector);
const state = { api: null, me: null, defs: new Map(), pilots: [], generation: 0 };
const DEAD_LETTERS_SHOWN = 20;

function mayOperate() {
  return state.me.role === "operator" || state.me.role === "admin";
}

function showError(message) {
  const alert = $("#alert");
  const line = node("p", "", message);
  alert.append(line);
  alert.hidden = false;
}

function clearErrors() {
  $("#alert").replaceChildren();
  $("#alert").hidden = true;
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  state.api = null;
  $("#console").hidden = true;
  $("#who").hidden = true;
  $("#forget").hidden = true;
  $("#key-form").hidden = false;
  $("#key").value = "";
  if (message) showError(message);
  $("#key").focus();
}

// Runs one part of the page; its failure is reported and does not stop the other parts.
async function guard(what, task) {
  try {
    await task();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      // Parts run in parallel: the first to learn the key was revoked signs out, once.
      if (state.api) signOut(`The key no longer works: ${error.message}`);
    } else {
      showError(`${what}: ${error.message}`);
    }
  }
}

async function open(key) {
  clearErrors();
  const api = client(key);
  try {
    state.me = await api.json("/api/v1/me");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut(`This key was not accepted: ${error.message}`);
    } else {
      // The server is down or failing, the key may be fine: keep it, so "Open" retries.
      $("#key-form").hidden = false;
      $("#key").value = key;
      showError(error.message);
    }
    return;
  }
  sessionStorage.setItem(KEY, key);
  state.api = api;
  await guard("Loading", () => show(api));
}

async function show(api) {
  const [defs, pilots] = await Promise.all([api.json("/api/v1/kpis"),
    api.json("/api/v1/pilots")]);
  state.defs = new Map(defs.map((d) => [d.id, d]));
  state.pilots = pilots;
  const scope = state.me.pilots ? `pilots ${state.me.pilots.join(", ")}` : "all pilots";
  $("#who").textContent = `${state.me.name} · ${state.me.role} · ${scope}`;
  $("#who").hidden = false;
  $("#forget").hidden = false;
  $("#key-form").hidden = true;
  if (!pilots.length) {
    showError("This key may read no pilot that is registered or has sent data yet.");
    return;
  }
  fillPilots(pilots);
  fillMetrics(defs);
  // Only an operator's console has these sections, and only then are they requested.
  $("#fleet").hidden = !mayOperate();
  $("#deadletters").hidden = !mayOperate();
  $("#console").hidden = false;
  await render();
}

function fillPilots(pilots) {
  const select = $("#pilot");
  const remembered = sessionStorage.getItem("citypilot.pilot");
  select.replaceChildren(...pilots.map((p) => {
    const option = node("option", "", p.name ? `${p.name} (${p.id})` : p.id);
    option.value = p.id;
    return option;
  }));
  if (pilots.some((p) => p.id === remembered)) select.value = remembered;
}

function fillMetrics(defs) {
  const select = $("#metric");
  const families = new Map();
  for (const d of defs) {
    if (!families.has(d.family)) families.set(d.family, node("optgroup"));
    const group = families.get(d.family);
    group.label = d.family;
    const option = node("option", "", d.unit === "1" ? d.title : `${d.title} (${d.unit})`);
    option.value = d.id;
    group.append(option);
  }
  select.replaceChildren(...families.values());
  select.value = state.defs.has("availability") ? "availability" : defs[0].id;
}

function beforeLabel(choice) {
  const [grain, back] = choice.split(":");
  return back === "0"
    ? `the same part of ${{ day: "yesterday", week: "last week", month: "last month" }[grain]}`
    : `the ${grain} before`;
}

// Draws everything for the chosen pilot and period. A newer render (the user picked another
// pilot meanwhile) makes the older one's late answers stale: they are dropped.
async function render() {
  const generation = ++state.generation;
  const fresh = () => generation === state.generation;
  clearErrors();
  const pilot = state.pilots.find((p) => p.id === $("#pilot").value);
  sessionStorage.setItem("citypilot.pilot", pilot.id);
  const tz = pilot.timezone;
  const choice = $("#period").value;
  const pair = periodPair(choice, tz);
  const ctx = { pilot, tz, pair, choice, fresh };
  const span = ([from, to]) => (pair.inProgress
    ? `${describe(from, tz, true)} – ${describe(to, tz, true)}`
    : `${describe(from, tz)} – ${describe(to - 1, tz)}`);
  $("#period-text").textContent = `${span(pair.current)} against ${span(pair.comparedTo)}`
    + ` (${tz})`;
  $("#console").setAttribute("aria-busy", "true");
  const parts = [guard("KPI tiles", () => tiles(ctx)), guard("Usage chart", () => usage(ctx)),
    guard("KPI chart", () => metric(ctx)), guard("Map", () => devicesMap(ctx))];
  if (mayOperate()) {
    parts.push(guard("Fleet", () => fleet(ctx)), guard("Dead letters", () => deadLetters(ctx)));
  }
  await Promise.all(parts);
  if (fresh()) $("#console").setAttribute("aria-busy", "false");
}

function kpiQuery(ctx, from, to, grain) {
  return { pilot: ctx.pilot.id, start: isoLocal(from, ctx.tz), end: isoLocal(to, ctx.tz), grain };
}

// A finished period and the one before it are one request with two buckets; a period in
// progress is compared with the same part of the one before, a request of its own.
async function tiles(ctx) {
  const { pair } = ctx;
  const nowQuery = kpiQuery(ctx, pair.inProgress ? pair.current[0] : pair.previous[0],
    pair.current[1], pair.grain);
  const beforeQuery = pair.inProgress
    ? kpiQuery(ctx, pair.comparedTo[0], pair.comparedTo[1], pair.grain) : null;
  const label = beforeLabel(ctx.choice);
  const jobs = [];
  for (const [family, list] of Object.entries(tilesOf([...state.defs.values()]))) {
    const container = $(`#tiles-${family}`);
    container.replaceChildren();
    for (const tile of list) {
      const definition = state.defs.get(tile.id);
      if (!definition) continue; // an older API without this KPI
      const item = emptyTile(tile, definition);
      // What was asked, for anyone (or any test) checking the tile against the API.
      Object.assign(item.dataset, { start: nowQuery.start, end: nowQuery.end,
        grain: nowQuery.grain, comparedStart: isoLocal(pair.comparedTo[0], ctx.tz),
        comparedEnd: isoLocal(pair.comparedTo[1], ctx.tz) });
      container.append(item);
      const path = `/api/v1/kpis/${tile.id}`;
      jobs.push(Promise.all([state.api.json(path, nowQuery),
        beforeQuery && state.api.json(path, beforeQuery)]).then(([answer, earlier]) => {
        if (!ctx.fresh()) return;
        fillTile(item, tile, definition, figure(answer, pair.current[0], tile.agg),
          figure(earlier || answer, pair.comparedTo[0], tile.agg), label);
      }));
    }
  }
  await Promise.all(jobs);
}

// A KPI answer as chart series: one per dimension value (service, kind or station).
function toSeries(answer, fallbackName) {
  const byName = new Map();
  for (const v of answer.values) {
    const name = [v.service, v.kind, v.gateway && v.device ? `${v.gateway}/${v.device}` : null,
      v.indicator, v.regime].filter(Boolean).join(" ") || fallbackName;
    if (!byName.has(name)) byName.set(name, []);
    byName.get(name).push({ start: Date.parse(v.start), end: Date.parse(v.end), value: v.value });
  }
  return [...byName.entries()].sort(([a], [b]) => a.localeCompare(b))
    .map(([name, points]) => ({ name, points }));
}

async function drawKpi(ctx, id, container, label) {
  const [from, to] = chartWindow(ctx.pair, ctx.tz);
  const answer = await state.api.json(`/api/v1/kpis/${id}`, kpiQuery(ctx, from, to, "day"));
  if (!ctx.fresh()) return;
  const definition = state.defs.get(id);
  lineChart(container, {
    series: toSeries(answer, definition.title), x0: from, x1: to, tz: ctx.tz,
    label: `${label}, per day, ${describe(from, ctx.tz)} to ${describe(to - 1, ctx.tz)}`,
    // Round ticks need no decimals, even in percent.
    format: (v) => formatNumber(v, Number.isInteger(v) ? "" : definition.unit),
    unit: definition.unit,
  });
}

async function usage(ctx) {
  await drawKpi(ctx, "usage_events", $("#usage-chart"), "Uses per service");
}

async function metric(ctx) {
  const id = $("#metric").value;
  $("#metric-title").textContent = `${state.defs.get(id).title}, per day`;
  await drawKpi(ctx, id, $("#metric-chart"), state.defs.get(id).title);
}

// The map and the open interfaces: every role's key reads the OGC inventory.
async function devicesMap(ctx) {
  openLinks($("#open-links"), ctx.pilot.id, ctx.pair.current.map((t) => isoLocal(t, ctx.tz)));
  const devices = await inventory(state.api, ctx.pilot.id);
  if (!ctx.fresh()) return;
  drawMap($("#map"), devices, { tz: ctx.tz, title: ctx.pilot.name || ctx.pilot.id });
}

async function fleet(ctx) {
  const devices = await state.api.json("/api/v1/devices", { pilot: ctx.pilot.id });
  if (!ctx.fresh()) return;
  devices.sort(fleetOrder);
  $("#fleet-table tbody").replaceChildren(...devices.map((d) => fleetRow(d, ctx.tz)));
  const online = devices.filter((d) => d.online).length;
  const silent = devices.length - online;
  $("#fleet-summary").textContent = devices.length
    ? `${online} of ${devices.length} devices online`
      + (silent ? ` · ${silent} silent (nothing within twice their reporting interval)` : "")
    : "No device is registered or has sent data for this pilot.";
}

async function deadLetters(ctx) {
  const letters = await state.api.json("/api/v1/deadletters", { limit: 200 });
  if (!ctx.fresh()) return;
  // Native topics name their pilot; other formats' topics do not, so those stay listed.
  const mine = letters.filter((l) => !l.topic.startsWith("citypilot/v1/")
    || l.topic.startsWith(`citypilot/v1/${ctx.pilot.id}/`)).slice(0, DEAD_LETTERS_SHOWN);
  const body = $("#dl-table tbody");
  if (!mine.length) {
    const row = node("tr");
    const cell = node("td", "muted", "No dead letters: every message was accepted.");
    cell.colSpan = 4;
    row.append(cell);
    body.replaceChildren(row);
    return;
  }
  body.replaceChildren(...mine.map((l) => deadLetterRow(l, ctx.tz)));
}

// A download of the chosen pilot and period: `what` names it in the status line, `query`
// gives the route's parameters from the pilot's zone and the period pair.
async function download(button, what, path, query) {
  const pilot = $("#pilot").value;
  const tz = state.pilots.find((p) => p.id === pilot).timezone;
  const pair = periodPair($("#period").value, tz);
  const status = $("#export-status");
  button.disabled = true;
  status.textContent = `Preparing the ${what}…`;
  try {
    const name = await state.api.download(path, query({ pilot: { id: pilot }, tz }, pair));
    status.textContent = `Downloaded ${name}.`;
  } catch (error) {
    status.textContent = "";
    showError(`${what}: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function exportKpis(button) {
  const format = button.dataset.format;
  return download(button, `${format.toUpperCase()} export`, "/api/v1/exports/kpis",
    (ctx, pair) => ({ ...kpiQuery(ctx, pair.previous[0], pair.end, pair.grain), format }));
}

// The report of the chosen period (so far, when in progress) with the period it is
// compared to as its baseline.
function exportReport(button) {
  const format = button.dataset.report;
  return download(button, `${format.toUpperCase()} report`, "/api/v1/reports/evaluation",
    (ctx, pair) => ({
      pilot: ctx.pilot.id, start: isoLocal(pair.current[0], ctx.tz),
      end: isoLocal(pair.current[1], ctx.tz), baseline_start: isoLocal(pair.comparedTo[0], ctx.tz),
      baseline_end: isoLocal(pair.comparedTo[1], ctx.tz), format,
    }));
}

function start() {
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("#key").value.trim();
    if (key) open(key);
  });
  $("#forget").addEventListener("click", () => signOut(""));
  $("#pilot").addEventListener("change", render);
  $("#period").addEventListener("change", render);
  $("#refresh").addEventListener("click", render);
  $("#metric").addEventListener("change", () => {
    const pilot = state.pilots.find((p) => p.id === $("#pilot").value);
    const generation = state.generation; // a render started meanwhile wins
    const ctx = { pilot, tz: pilot.timezone, pair: periodPair($("#period").value, pilot.timezone),
      fresh: () => generation === state.generation };
    guard("KPI chart", () => metric(ctx));
  });
  for (const button of document.querySelectorAll("#exports button[data-format]")) {
    button.addEventListener("click", () => exportKpis(button));
  }
  for (const button of document.querySelectorAll("#exports button[data-report]")) {
    button.addEventListener("click", () => exportReport(button));
  }
  const saved = sessionStorage.getItem(KEY);
  if (saved) open(saved);
  else $("#key").focus();
}

start();
