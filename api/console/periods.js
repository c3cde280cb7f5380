// Periods at local midnight in the pilot's timezone. The browser's own zone is not the
// pilot's (a city officer may read a Lisbon pilot from Berlin), and the API cuts its KPI
// buckets at the pilot's local days, ISO weeks (from Monday) and months: asking for exactly
// those boundaries gives whole buckets, not slivers. Intl knows every IANA zone, so no
// timezone library is needed.

const DAY_MS = 86_400_000;
const formatters = new Map();

function formatter(tz) {
  if (!formatters.has(tz)) {
    formatters.set(tz, new Intl.DateTimeFormat("en-US", {
      timeZone: tz, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
      hour: "numeric", minute: "numeric", second: "numeric",
    }));
  }
  return formatters.get(tz);
}

// The wall-clock fields of an instant in a zone.
function wall(tz, ms) {
  const parts = {};
  for (const p of formatter(tz).formatToParts(new Date(ms))) parts[p.type] = Number(p.value);
  return parts;
}

// How far the zone's wall clock is ahead of UTC at an instant, in ms.
function offsetMs(tz, ms) {
  const w = wall(tz, ms);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - (ms - (ms % 1000));
}

// The instant of local midnight on a calendar date (month 1-12; day may overflow, Date.UTC
// normalises it), as Python's zoneinfo (and so the API) has it: where midnight happens twice
// (clocks set back at midnight) the first one; where it does not happen (clocks set forward
// at midnight, as in Havana or Santiago) the instant the wall clock would show with the
// offset from before the change.
export function localMidnight(tz, year, month, day) {
  const wallMs = Date.UTC(year, month - 1, day);
  // The offsets in force around that wall time: one of them is the answer's.
  const offsets = new Set([-DAY_MS, 0, DAY_MS].map((d) => offsetMs(tz, wallMs + d)));
  offsets.add(offsetMs(tz, wallMs - offsetMs(tz, wallMs)));
  const fits = [...offsets].map((o) => wallMs - o).filter((t) => offsetMs(tz, t) === wallMs - t);
  return fits.length ? Math.min(...fits) : wallMs - Math.min(...offsets);
}

// The first day of the period holding `date`, `back` periods earlier, as {year, month, day}.
function periodStart(grain, date, back) {
  if (grain === "month") return { year: date.year, month: date.month - back, day: 1 };
  if (grain === "week") {
    const weekday = (new Date(Date.UTC(date.year, date.month - 1, date.day)).getUTCDay() + 6) % 7;
    return { year: date.year, month: date.month, day: date.day - weekday - 7 * back };
  }
  return { year: date.year, month: date.month, day: date.day - back };
}

function startMs(tz, grain, date, back) {
  const d = periodStart(grain, date, back);
  return localMidnight(tz, d.year, d.month, d.day);
}

// The chosen period and the one it is compared with, for tiles and their trend.
// choice: "week:0" (this week so far) or "week:1" (last week), likewise day and month.
// A period in progress ends now, and is compared with the same part of the one before
// ("this week so far" against last week up to the same weekday and hour): comparing a few
// days with a whole week, or averaging in days still to come, would show a collapse.
export function periodPair(choice, tz, nowMs = Date.now()) {
  const [grain, backText] = choice.split(":");
  const back = Number(backText);
  const w = wall(tz, nowMs);
  const today = { year: w.year, month: w.month, day: w.day };
  const start = startMs(tz, grain, today, back);
  const end = startMs(tz, grain, today, back - 1);
  const previous = [startMs(tz, grain, today, back + 1), start];
  const inProgress = back === 0;
  return {
    grain, inProgress, end, previous,
    current: [start, inProgress ? nowMs : end],
    comparedTo: inProgress ? [previous[0], Math.min(start, previous[0] + nowMs - start)]
      : previous,
    tomorrow: localMidnight(tz, w.year, w.month, w.day + 1),
  };
}

// The charts' window: the two periods, widened to at least 14 local days so that a day's
// tiles still come with a fortnight of context, and ending with today (days to come have
// no data, and drawing them as zero would read as a collapse).
export function chartWindow(pair, tz) {
  const end = Math.min(pair.end, pair.tomorrow);
  const w = wall(tz, end - 1);
  const fortnight = localMidnight(tz, w.year, w.month, w.day - 13);
  return [Math.min(pair.previous[0], fortnight), end];
}

// RFC 3339 in the pilot's local time ("2024-01-15T00:00:00+01:00"): the API needs an
// offset, and local midnights read better in URLs and export file names than UTC's 23:00.
export function isoLocal(ms, tz) {
  const offset = Math.round(offsetMs(tz, ms) / 60_000);
  const fraction = ms % 1000 ? `.${String(ms % 1000).padStart(3, "0")}` : "";
  const local = new Date(ms + offset * 60_000).toISOString().slice(0, 19) + fraction;
  const sign = offset < 0 ? "-" : "+";
  const hh = String(Math.floor(Math.abs(offset) / 60)).padStart(2, "0");
  const mm = String(Math.abs(offset) % 60).padStart(2, "0");
  return `${local}${sign}${hh}:${mm}`;
}

export function describe(ms, tz, withTime = false) {
  const options = { timeZone: tz, weekday: "short", day: "numeric", month: "short" };
  if (withTime) Object.assign(options, { hour: "2-digit", minute: "2-digit" });
  return new Intl.DateTimeFormat("en-GB", options).format(new Date(ms));
}

// "40 min ago", "3 days ago": how long a device has been silent, at a glance.
export function ago(ms, nowMs = Date.now()) {
  const s = Math.max(0, (nowMs - ms) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 2 * DAY_MS / 1000) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}
