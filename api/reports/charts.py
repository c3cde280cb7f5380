"""The report's charts as inline SVG, drawn to read in greyscale (black, greys, dashes and
marker shapes, never colour alone), each with a title and a text description.

The figures they plot are the report's tables' (which hold the KPI API's numbers); a chart
only places them. `fmt` formats a number for the report's language.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import count

from markupsafe import Markup, escape

Fmt = Callable[[float | None], str]
_W, _H, _PAD = 640, 220, 44
_ids = count()


def _frame(title: str, desc: str, body: str, height: int = _H) -> Markup:
    n = next(_ids)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {height}" width="100%" '
        f'role="img" aria-labelledby="c{n}t c{n}d" class="chart">'
        f'<title id="c{n}t">{escape(title)}</title><desc id="c{n}d">{escape(desc)}</desc>'
        f'<rect x="0" y="0" width="{_W}" height="{height}" fill="#fff"/>{body}</svg>')


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 11) -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="#000">{escape(text)}</text>')


def trend(title: str, weeks: Sequence[tuple[str, float | None, float | None]],
          fmt: Fmt, uses_label: str, availability_label: str) -> Markup:
    """Weekly uses as grey bars (left scale), availability as a black dashed line with
    square markers (right scale, 0-100 %)."""
    top = max([u for _, u, _ in weeks if u is not None] + [1.0])
    inner_w, inner_h = _W - 2 * _PAD, _H - 2 * _PAD
    step = inner_w / max(len(weeks), 1)
    parts = [f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" '
             'stroke="#000"/>', _text(_PAD - 4, _PAD, fmt(top), "end"),
             _text(_PAD - 4, _H - _PAD, "0", "end"), _text(_W - _PAD + 4, _PAD, "100 %"),
             _text(_W - _PAD + 4, _H - _PAD, "0 %")]
    line: list[str] = []
    for i, (label, uses, avail) in enumerate(weeks):
        x = _PAD + i * step
        if uses is not None:
            h = inner_h * uses / top
            width = min(step * 0.7, 48.0)
            parts.append(f'<rect x="{x + (step - width) / 2:.1f}" y="{_H - _PAD - h:.1f}" '
                         f'width="{width:.1f}" height="{h:.1f}" fill="#999" '
                         'stroke="#000" stroke-width="0.5"/>')
        if avail is not None:
            y = _H - _PAD - inner_h * avail / 100.0
            line.append(f"{x + step / 2:.1f},{y:.1f}")
            parts.append(f'<rect x="{x + step / 2 - 3:.1f}" y="{y - 3:.1f}" width="6" '
                         'height="6" fill="#000"/>')
        if len(weeks) <= 14 or i % max(1, len(weeks) // 12) == 0:
            parts.append(_text(x + step / 2, _H - _PAD + 14, label, "middle", 9))
    if len(line) > 1:
        parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="#000" '
                     'stroke-width="1.5" stroke-dasharray="5 3"/>')
    parts += [f'<rect x="{_PAD}" y="8" width="12" height="10" fill="#999" stroke="#000" '
              'stroke-width="0.5"/>', _text(_PAD + 16, 17, uses_label),
              f'<line x1="{_W / 2}" y1="13" x2="{_W / 2 + 20}" y2="13" stroke="#000" '
              'stroke-dasharray="5 3" stroke-width="1.5"/>',
              _text(_W / 2 + 24, 17, availability_label)]
    desc = "; ".join(f"{label}: {fmt(u)} / {fmt(a)} %" for label, u, a in weeks)
    return _frame(title, f"{uses_label} / {availability_label}: {desc}", "".join(parts))


def quadrant(title: str, points: Sequence[tuple[str, float | None, float | None]],
             works_at: float, used_at: float, names: tuple[str, str, str, str],
             axes: tuple[str, str], fmt: Fmt) -> Markup:
    """Services as labelled circles: availability (x, 0-100 %) against uses per device and
    day (y); the dashed lines split the four named corners (top-left: used but unreliable,
    bottom-right: works but unused)."""
    ys = [y for _, _, y in points if y is not None]
    top = max([*ys, used_at * 2, 1.0])
    inner_w, inner_h = _W - 2 * _PAD, _H - 2 * _PAD

    def at(x: float, y: float) -> tuple[float, float]:
        return _PAD + inner_w * x / 100.0, _H - _PAD - inner_h * min(y, top) / top

    vx, _ = at(works_at, 0)
    _, hy = at(0, used_at)
    parts = [f'<rect x="{_PAD}" y="{_PAD}" width="{inner_w}" height="{inner_h}" fill="none" '
             'stroke="#000"/>',
             f'<line x1="{vx:.1f}" y1="{_PAD}" x2="{vx:.1f}" y2="{_H - _PAD}" stroke="#555" '
             'stroke-dasharray="4 3"/>',
             f'<line x1="{_PAD}" y1="{hy:.1f}" x2="{_W - _PAD}" y2="{hy:.1f}" stroke="#555" '
             'stroke-dasharray="4 3"/>',
             _text(_PAD + 4, _PAD + 12, names[0]), _text(_W - _PAD - 4, _PAD + 12, names[1],
                                                         "end"),
             _text(_PAD + 4, _H - _PAD - 4, names[2]),
             _text(_W - _PAD - 4, _H - _PAD - 4, names[3], "end"),
             _text(_W / 2, _H - 8, axes[0], "middle"), _text(4, _PAD - 8, axes[1]),
             _text(_PAD, _H - _PAD + 14, "0 %", "middle", 9),
             _text(_W - _PAD, _H - _PAD + 14, "100 %", "middle", 9)]
    for label, x, y in points:
        if x is None or y is None:
            continue
        cx, cy = at(x, y)
        parts += [f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="#fff" stroke="#000" '
                  'stroke-width="2"/>', _text(cx + 8, cy + 4, label)]
    desc = "; ".join(f"{label}: {fmt(x)} %, {fmt(y)}" for label, x, y in points)
    return _frame(title, f"{axes[0]} / {axes[1]}: {desc}", "".join(parts))


def against_limits(title: str, rows: Sequence[tuple[str, float]],
                   limits: Sequence[tuple[float, str]], unit: str, fmt: Fmt) -> Markup:
    """Horizontal grey bars per station, the limit values as vertical lines (each its own
    dash pattern, named at the top)."""
    step = 15  # a station's line: 4 mm on the page, so twenty stations take a third of it
    height = _PAD + step * max(len(rows), 1) + 20
    top = max([v for _, v in rows] + [v for v, _ in limits] + [1.0]) * 1.1
    left, inner_w = 120, _W - 120 - _PAD
    parts = []
    for i, (label, value) in enumerate(rows):
        y = _PAD + step * i
        parts += [_text(left - 6, y + 11, label, "end", 10),
                  f'<rect x="{left}" y="{y + 2}" width="{inner_w * value / top:.1f}" '
                  'height="11" fill="#aaa" stroke="#000" stroke-width="0.5"/>',
                  _text(left + inner_w * value / top + 4, y + 11, f"{fmt(value)} {unit}", size=10)]
    for j, (value, label) in enumerate(limits):
        x = left + inner_w * value / top
        dash = ("6 3", "2 2", "8 2 2 2")[j % 3]
        parts += [f'<line x1="{x:.1f}" y1="{_PAD - 4}" x2="{x:.1f}" y2="{height - 16}" '
                  f'stroke="#000" stroke-width="1.5" stroke-dasharray="{dash}"/>',
                  _text(x, 14 + 12 * j, f"{label}: {fmt(value)} {unit}", "middle", 9)]
    desc = "; ".join(f"{label}: {fmt(v)} {unit}" for label, v in rows) + " — " + \
        "; ".join(f"{label} {fmt(v)} {unit}" for v, label in limits)
    return _frame(title, desc, "".join(parts), height)
