// Line charts in plain SVG, and the SVG pieces the device map (`map.js`) shares with them.
// The console must work offline and be served by citypilot alone; what it draws (a handful
// of daily series) takes less code than vendoring a chart library and its licence would.

const SVG = "http://www.w3.org/2000/svg";
// Okabe-Ito: colours that colour-blind readers tell apart, all readable on white.
export const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00",
  "#000000"];
const W = 640;
const H = 240;
const M = { left: 48, right: 12, top: 22, bottom: 28 };

export function el(name, attrs, parent, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  if (parent) parent.append(node);
  return node;
}

// A round step (1, 2 or 5 times a power of ten) giving about `ticks` intervals.
export function niceStep(span, ticks) {
  const raw = span / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / magnitude;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * magnitude;
}

// A map's mark of radius r at (x, y): a circle, a square or a diamond of the same area, so
// that more kinds than colours stay apart (the shape changes when the palette comes round).
export const SHAPES = ["circle", "square", "diamond"];
export function mark(parent, shape, x, y, r, attrs) {
  if (shape === "circle") return el("circle", { cx: x, cy: y, r, ...attrs }, parent);
  const h = r * Math.sqrt(Math.PI) / 2; // half the side of a square of the circle's area
  const d = shape === "square"
    ? `M${x - h},${y - h}h${2 * h}v${2 * h}h${-2 * h}z`
    : `M${x},${y - h * Math.SQRT2}l${h * Math.SQRT2},${h * Math.SQRT2}`
      + `l${-h * Math.SQRT2},${h * Math.SQRT2}l${-h * Math.SQRT2},${-h * Math.SQRT2}z`;
  return el("path", { d, ...attrs }, parent);
}

// A legend's mark: a line's stroke, or a map's mark (`shape`, one of SHAPES).
function swatch(color, shape) {
  const svg = el("svg", { width: 14, height: 14, viewBox: "0 0 14 14", "aria-hidden": "true" });
  if (shape) mark(svg, shape, 7, 7, 5, { fill: color });
  else el("rect", { x: 1, y: 5, width: 12, height: 4, rx: 1, fill: color }, svg);
  return svg;
}

// entries: [{name, color, shape}] (no shape: a line); the list under a chart or a map.
export function legend(entries) {
  const list = document.createElement("ul");
  list.className = "legend";
  for (const { name, color, shape } of entries) {
    const item = document.createElement("li");
    item.append(swatch(color, shape), document.createTextNode(name));
    list.append(item);
  }
  return list;
}

// series: [{name, points: [{start, end, value}]}] with times in ms and null for "no value".
// Points sit at the middle of their bucket; a null breaks the line instead of reading as 0.
// Tick labels are bare numbers (`format`), the unit is written once above the axis.
export function lineChart(container, { series, x0, x1, label, tz, format, unit }) {
  container.replaceChildren();
  const values = series.flatMap((s) => s.points.map((p) => p.value)).filter((v) => v !== null);
  if (!values.length) {
    const empty = document.createElement("p");
    empty.className = "muted";
    empty.textContent = "No data in this period.";
    container.append(empty);
    return;
  }
  let lo = Math.min(0, ...values);
  let hi = Math.max(...values);
  if (hi === lo) hi = lo + 1;
  const step = niceStep(hi - lo, 4);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const x = (t) => M.left + ((t - x0) / (x1 - x0)) * (W - M.left - M.right);
  const y = (v) => H - M.bottom - ((v - lo) / (hi - lo)) * (H - M.top - M.bottom);

  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
  if (unit && unit !== "1") el("text", { x: 4, y: 12, class: "tick" }, svg, unit);
  for (let i = 0; lo + i * step <= hi + step / 2; i += 1) {
    const v = lo + i * step;
    el("line", { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v), class: "grid" }, svg);
    el("text", { x: M.left - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, svg,
      format(v));
  }
  // One label per bucket would overlap: at most seven, evenly spaced.
  const starts = [...new Set(series.flatMap((s) => s.points.map((p) => p.start)))].sort(
    (a, b) => a - b);
  const every = Math.max(1, Math.ceil(starts.length / 7));
  const day = new Intl.DateTimeFormat("en-GB", { timeZone: tz, day: "numeric", month: "short" });
  starts.forEach((t, i) => {
    if (i % every) return;
    el("text", { x: x(t), y: H - 8, "text-anchor": "start", class: "tick" }, svg,
      day.format(new Date(t)));
  });

  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    let d = "";
    let pen = "M";
    for (const p of s.points) {
      if (p.value === null) {
        pen = "M";
        continue;
      }
      const px = x((p.start + p.end) / 2);
      d += `${pen}${px.toFixed(1)},${y(p.value).toFixed(1)}`;
      pen = "L";
      el("circle", { cx: px, cy: y(p.value), r: 2.5, fill: color }, svg);
    }
    if (d) el("path", { d, stroke: color, fill: "none", "stroke-width": 2, "data-series": s.name },
      svg);
  });
  container.append(svg);

  container.append(legend(series.map((s, i) => ({ name: s.name,
    color: PALETTE[i % PALETTE.length] }))));
}
