"""Charts drawn on the server as inline SVG: no chart library, no script, nothing fetched.

Each function returns SVG markup sized by a ``viewBox`` so it scales with the page; every point
carries a ``<title>`` with its exact figure, which the browser shows on hover.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

# One colour per root-cause dimension, and a small palette for other series.
DIMENSION_COLOURS = {"人": "#d9480f", "机": "#1971c2", "物": "#2f9e44", "法": "#9c36b5", "环": "#e67700"}
PALETTE = ("#1971c2", "#d9480f", "#2f9e44", "#9c36b5", "#e67700", "#0c8599")


def _fmt(value: float) -> str:
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _text(x: float, y: float, text: str, anchor: str = "middle") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" class="tick" text-anchor="{anchor}">{escape(text)}</text>'


def sparkline(values: Sequence[float], width: int = 120, height: int = 28, label: str = "") -> Markup:
    """A tiny trend line; the last point is marked."""
    if not values:
        return Markup(f'<svg class="spark" viewBox="0 0 {width} {height}" role="img"></svg>')
    top = max(max(values), 1)
    step = width / max(len(values) - 1, 1)
    pts = [(i * step, height - 3 - (v / top) * (height - 6)) for i, v in enumerate(values)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    lx, ly = pts[-1]
    title = escape(label or " → ".join(_fmt(v) for v in values[-6:]))
    return Markup(
        f'<svg class="spark" viewBox="0 0 {width} {height}" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        f'<polyline fill="none" stroke="#1971c2" stroke-width="1.6" points="{path}"/>'
        f'<circle cx="{lx:.1f}" cy="{ly:.1f}" r="2.4" fill="#1971c2"/></svg>'
    )


def line_chart(
    periods: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    markers: Mapping[str, str] | None = None,
    width: int = 720,
    height: int = 220,
    percent: bool = False,
) -> Markup:
    """Lines over periods; ``markers`` maps a period to ``warning`` or ``alarm`` (drawn as a band)."""
    left, right, top_pad, bottom = 46, 28, 12, 28
    inner_w, inner_h = width - left - right, height - top_pad - bottom
    peak = max((max(v) for v in series.values() if len(v)), default=0) or 1
    if percent:
        peak = min(1.0, max(peak * 1.1, 0.05))
    n = len(periods)
    step = inner_w / max(n - 1, 1)

    def x(i: int) -> float:
        return left + i * step

    def y(v: float) -> float:
        return top_pad + inner_h - (v / peak) * inner_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(", ".join(series))}">'
    ]
    for frac in (0, 0.5, 1):
        gy = top_pad + inner_h - frac * inner_h
        tick = f"{peak * frac:.0%}" if percent else _fmt(peak * frac)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{gy:.1f}" y2="{gy:.1f}" class="grid"/>')
        parts.append(_text(left - 6, gy + 4, tick, "end"))
    for i, period in enumerate(periods):
        level = (markers or {}).get(period)
        if level:
            parts.append(
                f'<rect class="mark-{escape(level)}" x="{x(i) - step / 2:.1f}" y="{top_pad}" '
                f'width="{max(step, 6):.1f}" height="{inner_h}"><title>{escape(period)}: '
                f"{'预警 warning' if level == 'warning' else '告警 alarm'}</title></rect>"
            )
    label_every = max(1, n // 8)
    for i, period in enumerate(periods):
        if i % label_every == 0 or i == n - 1:
            parts.append(_text(x(i), height - 8, period))
    for k, (name, values) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}">'
            f"<title>{escape(name)}</title></polyline>"
        )
        for i, v in enumerate(values):
            shown = f"{v:.1%}" if percent else _fmt(v)
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.6" fill="{colour}">'
                f"<title>{escape(name)} {escape(periods[i])}: {shown}</title></circle>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_shares(
    periods: Sequence[str], mix: Mapping[str, Sequence[int]], width: int = 720, height: int = 200
) -> Markup:
    """One 100% bar per period split by dimension (人机物法环)."""
    left, right, top_pad, bottom = 46, 28, 8, 28
    inner_w, inner_h = width - left - right, height - top_pad - bottom
    n = max(len(periods), 1)
    slot = inner_w / n
    bar = max(min(slot * 0.7, 40), 2)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="人机物法环">']
    label_every = max(1, n // 8)
    for i, period in enumerate(periods):
        total = sum(values[i] for values in mix.values()) or 1
        y0 = float(top_pad + inner_h)
        cx = left + slot * i + slot / 2
        for dim, values in mix.items():
            h = values[i] / total * inner_h
            if h <= 0:
                continue
            y0 -= h
            colour = DIMENSION_COLOURS.get(dim, "#868e96")
            parts.append(
                f'<rect x="{cx - bar / 2:.1f}" y="{y0:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(period)} {escape(dim)}: {values[i]} '
                f"({values[i] / total:.0%})</title></rect>"
            )
        if i % label_every == 0 or i == n - 1:
            parts.append(_text(cx, height - 8, period))
    for frac in (0, 0.5, 1):
        gy = top_pad + inner_h - frac * inner_h
        parts.append(_text(left - 6, gy + 4, f"{frac:.0%}", "end"))
    parts.append("</svg>")
    return Markup("".join(parts))


def before_after(before: float, after: float, *, unit: str) -> Markup:
    """Two bars: the problem's rate before a fix and after it."""
    width, height, base = 320, 164, 120
    peak = max(before, after, 1e-9) * 1.15
    parts = [f'<svg class="chart small" viewBox="0 0 {width} {height}" role="img" aria-label="before/after">']
    for i, (name, value, colour) in enumerate(
        (("整改前 before", before, "#868e96"), ("整改后 after", after, "#1971c2"))
    ):
        h = value / peak * (base - 10)
        bx = 50 + i * 130
        parts.append(
            f'<rect x="{bx}" y="{base - h:.1f}" width="80" height="{h:.1f}" fill="{colour}">'
            f"<title>{escape(name)}: {_fmt(value)} {escape(unit)}</title></rect>"
            + _text(bx + 40, base - h - 4, _fmt(value))
            + _text(bx + 40, base + 16, name)
        )
    parts.append(_text(width / 2, height - 4, f"单位 unit: {unit}"))
    parts.append("</svg>")
    return Markup("".join(parts))
