"""The leaderboard as a picture: each model's rating with its 95 % interval, as inline SVG (no plotting library)."""

from __future__ import annotations

from html import escape
from typing import Any, Sequence


def interval_svg(rows: Sequence[dict[str, Any]], width: int = 640, row_height: int = 28) -> str:
    """An SVG chart: one line per model (best first), a dot at its rating, a bar over its interval.

    ``rows`` are leaderboard rows (model, rating, ci_low, ci_high). Returns "" for no rows.
    """
    if not rows:
        return ""
    label_w, pad = 190, 16
    low = min(float(r["ci_low"]) for r in rows)
    high = max(float(r["ci_high"]) for r in rows)
    span = max(high - low, 1.0)
    low, high = low - 0.05 * span, high + 0.05 * span
    plot_w = width - label_w - 2 * pad

    def x(value: float) -> float:
        return label_w + pad + (value - low) / (high - low) * plot_w

    height = row_height * len(rows) + 34
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="ratings with 95% intervals" '
             'style="font: 13px sans-serif; max-width: 100%">']
    for i, row in enumerate(rows):
        y = 14 + i * row_height
        parts.append(f'<text x="{label_w}" y="{y + 4}" text-anchor="end" fill="currentColor">'
                     f'{escape(str(row["model"]))}</text>')
        parts.append(f'<line x1="{x(row["ci_low"]):.1f}" x2="{x(row["ci_high"]):.1f}" y1="{y}" y2="{y}" '
                     'stroke="#6b7280" stroke-width="3" stroke-linecap="round"/>')
        parts.append(f'<circle cx="{x(row["rating"]):.1f}" cy="{y}" r="5" fill="#f97316">'
                     f'<title>{escape(str(row["model"]))}: {row["rating"]:.0f} '
                     f'({row["ci_low"]:.0f}–{row["ci_high"]:.0f})</title></circle>')
    axis_y = height - 14
    for value in _ticks(low, high):
        parts.append(f'<text x="{x(value):.1f}" y="{axis_y}" text-anchor="middle" fill="#6b7280">{value:.0f}</text>')
        parts.append(f'<line x1="{x(value):.1f}" x2="{x(value):.1f}" y1="4" y2="{axis_y - 12}" stroke="#9ca3af" '
                     'stroke-width="0.5" stroke-dasharray="2 3"/>')
    parts.append("</svg>")
    return "".join(parts)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values between ``low`` and ``high`` (steps of 1, 2 or 5 times a power of ten)."""
    raw = (high - low) / count
    magnitude = 10 ** len(str(int(max(raw, 1)))) / 10
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start = (low // step + 1) * step
    return [start + i * step for i in range(count + 1) if start + i * step < high]
