// What the console draws from API answers: KPI tiles, the fleet table, the dead letters.
// Everything is built with textContent, never innerHTML: payloads and device names come
// from gateways and must never be read as markup.

import { ago, describe } from "./periods.js";

// The tiles and how a KPI with a dimension becomes one figure (`agg`: the sum over it, the
// highest value, e.g. the worst station, or the lowest, e.g. the fewest exceedances left). Titles, units, formulas and limit values come
// from the API's KPI catalogue, so they are not restated here.
const WORST = { agg: "max", better: "down", note: "worst station" };
const TILES = {
  pull: [
    { id: "usage_events", agg: "sum", title: "Uses, all services" },
    { id: "active_users_daily" },
    { id: "active_users_weekly" },
    { id: "returning_user_rate" },
  ],
  push: [
    { id: "devices_online", better: "up" },
    { id: "devices_deployed" },
    { id: "availability" },
    { id: "data_completeness" },
    { id: "rejection_rate", better: "down" },
  ],
};
// Outcomes: a tile for every outcome KPI of the catalogue, its worst station unless said here.
const OUTCOME = {
  exceedances_left: { agg: "min", better: "up", note: "fewest left" },
  lighting_energy_saving: { better: "up" },
};

export function tilesOf(definitions) {
  const outcome = definitions.filter((d) => d.family === "outcome")
    .map((d) => ({ id: d.id, ...(OUTCOME[d.id] || WORST) }));
  return { ...TILES, outcome };
}

export function node(tag, className, text) {
  const n = document.createElement(tag);
  if (className) n.className = className;
  if (text !== undefined) n.textContent = text;
  return n;
}

// Percentages with one decimal, whole numbers as such, other values with 2 significant
// decimals at most: enough to compare, few enough to read.
export function formatNumber(value, unit) {
  const a = Math.abs(value);
  const digits = unit === "%" ? 1 : Number.isInteger(value) ? 0 : a < 10 ? 2 : a < 1000 ? 1 : 0;
  return new Intl.NumberFormat("en", {
    minimumFractionDigits: digits, maximumFractionDigits: digits,
  }).format(value);
}

export function withUnit(value, unit) {
  const text = formatNumber(value, unit);
  if (unit === "%") return `${text}%`;
  return unit === "1" ? text : `${text} ${unit}`;
}

// One figure of a KPI answer for the bucket starting at `startMs`: the value, or the total
// (agg "sum"), the highest (agg "max") or the lowest value (agg "min") over the dimension;
// null with the API's reason when there is none.
export function figure(answer, startMs, agg) {
  const points = answer.values.filter((v) => Date.parse(v.start) === startMs);
  const known = points.filter((v) => v.value !== null).map((v) => v.value);
  if (!known.length) {
    return { value: null, reason: points.length ? points[0].reason || "no value" : "no data" };
  }
  if (agg === "max") return { value: Math.max(...known), reason: null };
  if (agg === "min") return { value: Math.min(...known), reason: null };
  if (agg !== "sum" && known.length > 1) return { value: null, reason: "one value per dimension" };
  return { value: known.reduce((total, v) => total + v, 0), reason: null };
}

function trendText(now, before, unit, beforeLabel) {
  if (now.value === null || before.value === null) {
    return { arrow: "", text: `no figure for ${beforeLabel} to compare`, direction: "none" };
  }
  const diff = now.value - before.value;
  const was = `${beforeLabel}: ${withUnit(before.value, unit)}`;
  // Percentages change by points; counts by a share of what they were.
  const relative = unit !== "%" && before.value !== 0;
  const size = relative ? 100 * diff / before.value : diff;
  const shown = formatNumber(Math.abs(size), relative ? "%" : unit);
  // A change that rounds to nothing is no change to the reader either.
  if (Number(shown.replaceAll(",", "")) === 0) {
    return { arrow: "=", text: `about the same as ${was}`, direction: "flat" };
  }
  const direction = diff > 0 ? "up" : "down";
  let amount = `${shown}%`;
  if (!relative) amount = unit === "%" ? `${shown} points` : withUnit(Math.abs(diff), unit);
  return { arrow: diff > 0 ? "▲" : "▼", text: `${direction} ${amount} on ${was}`, direction };
}

// A tile waiting for its KPI: the skeleton, so the layout does not jump when numbers arrive.
export function emptyTile(tile, definition) {
  const item = node("li", "tile");
  item.dataset.kpi = tile.id;
  item.dataset.state = "loading";
  item.dataset.agg = tile.agg || "one";
  const title = tile.title || (tile.note ? `${definition.title}, ${tile.note}` : definition.title);
  item.append(node("h3", "", title), node("p", "value", "…"), node("p", "trend muted", ""));
  const how = node("details", "how");
  how.append(node("summary", "", "How it is computed"),
    node("p", "", definition.formula), node("p", "muted", definition.reference));
  for (const limit of definition.limits || []) {
    const allowed = limit.allowed === null ? "" : `, at most ${limit.allowed} a year`;
    how.append(node("p", "muted limit",
      `${limit.regime}: ${formatNumber(limit.value, limit.unit)} ${limit.unit} ` +
      `(${limit.averaging})${allowed}`));
  }
  item.append(how);
  return item;
}

// The limit values a tile's figure breaks, in words (colour is never the only sign): a count
// of exceedances above its yearly allowance, a mean or level above its limit value (in the
// KPI's own unit; a month's mean against an annual limit is a warning sign, and says so), an
// allowance left below zero.
export function breaches(definition, value) {
  if (value === null) return [];
  if (definition.id === "exceedances_left") return value < 0 ? ["allowance used up"] : [];
  return (definition.limits || []).flatMap((limit) => {
    if (limit.allowed !== null) {
      return value > limit.allowed
        ? [`more than the ${limit.allowed} allowed a year (${limit.regime})`] : [];
    }
    if (limit.unit !== definition.unit || value <= limit.value) return [];
    return [`above ${withUnit(limit.value, limit.unit)}, the ${limit.averaging} limit ` +
      `(${limit.regime})`];
  });
}

// now, before: figures (see `figure`) of the chosen period and of the one it is compared to.
export function fillTile(item, tile, definition, now, before, beforeLabel) {
  const unit = definition.unit;
  const value = item.querySelector(".value");
  value.replaceChildren();
  if (now.value === null) {
    value.append(node("span", "number", "—"), node("span", "reason", ` ${now.reason}`));
  } else {
    const text = withUnit(now.value, unit);
    const number = formatNumber(now.value, unit);
    value.append(node("span", "number", number), node("span", "unit", text.slice(number.length)));
  }
  item.querySelector(".breach")?.remove();
  const broken = breaches(definition, now.value);
  if (broken.length) {
    const warning = node("p", "breach", `⚠ ${broken.join("; ")}`);
    value.after(warning);
  }
  item.dataset.breaches = String(broken.length);
  const trend = trendText(now, before, unit, beforeLabel);
  const line = item.querySelector(".trend");
  const judged = trend.direction === "up" || trend.direction === "down";
  const good = judged && tile.better ? (trend.direction === tile.better ? " good" : " bad") : "";
  line.className = `trend ${trend.direction}${good}`;
  line.replaceChildren();
  const arrow = node("span", "arrow", trend.arrow ? `${trend.arrow} ` : "");
  arrow.setAttribute("aria-hidden", "true");
  line.append(arrow, document.createTextNode(trend.text));
  // The raw figures, for anyone (or any test) checking the tile against the API.
  Object.assign(item.dataset, {
    state: "ready", value: now.value ?? "", previous: before.value ?? "", unit,
  });
}

// Silent devices first (the ones an operator must go and see), the longest silent first.
export function fleetOrder(a, b) {
  if (a.online !== b.online) return a.online ? 1 : -1;
  const seen = (d) => (d.last_seen ? Date.parse(d.last_seen) : -Infinity);
  return seen(a) - seen(b) || a.id.localeCompare(b.id);
}

export function fleetRow(device, tz) {
  const row = document.createElement("tr");
  row.dataset.device = device.id;
  row.dataset.online = String(device.online);
  const status = node("span", `status ${device.online ? "online" : "offline"}`);
  const dot = node("span", "dot", "●");
  dot.setAttribute("aria-hidden", "true");
  status.append(dot, document.createTextNode(device.online ? " Online" : " Offline"));
  const seen = node("td");
  if (device.last_seen) {
    const when = node("time", "", ago(Date.parse(device.last_seen)));
    when.dateTime = device.last_seen;
    when.title = describe(Date.parse(device.last_seen), tz, true);
    seen.append(when);
  } else {
    seen.textContent = "never";
  }
  const battery = device.battery === null ? "—" : `${Math.round(device.battery * 100)}%`;
  const low = device.battery !== null && device.battery < 0.2;
  const cells = [node("th", "", device.id), node("td", "", device.gateway),
    node("td", "", device.service || device.kind || "—"), node("td"), seen,
    node("td", low ? "warn" : "", low ? `${battery} (low)` : battery)];
  cells[0].scope = "row";
  cells[3].append(status);
  row.append(...cells);
  return row;
}

export function deadLetterRow(letter, tz) {
  const row = document.createElement("tr");
  const time = node("td");
  const when = node("time", "", describe(Date.parse(letter.time), tz, true));
  when.dateTime = letter.time;
  time.append(when);
  const reason = node("td");
  reason.append(node("code", "reason", letter.reason));
  const topic = node("td", "wrap");
  topic.append(node("code", "", letter.topic));
  const detail = node("td", "wrap", letter.detail);
  const payload = node("details");
  payload.append(node("summary", "", "payload"), node("pre", "", letter.payload));
  detail.append(payload);
  row.append(time, reason, topic, detail);
  return row;
}
