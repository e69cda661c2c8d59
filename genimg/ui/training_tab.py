"""Training tab: every training run (``python -m genimg train ...``), its curves, sample grids and alarms.

Thin: the data comes from :mod:`genimg.tasks.runs` (the index of runs and the run folders the
trackers write). Two runs can be shown together; "Live" refreshes every few seconds while a run
trains. TensorBoard and trackio show the same records (README, "Watching training").
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from genimg.tasks.runs import (TABLE_COLUMNS, alarms_markdown, curve_points, nearest_sample, run_card, runs_table,
                               sample_steps)

LIVE_SECONDS = 5

# Tableau's 20 colours: one per series, in the order the series first appear.
# Tableau 20 as (strong, light) pairs: a metric keeps its hue in both runs shown side by side; the
# first run draws it strong, the second light.
PALETTE = (("#1f77b4", "#aec7e8"), ("#ff7f0e", "#ffbb78"), ("#2ca02c", "#98df8a"), ("#d62728", "#ff9896"),
           ("#9467bd", "#c5b0d5"), ("#8c564b", "#c49c94"), ("#e377c2", "#f7b6d2"), ("#7f7f7f", "#c7c7c7"),
           ("#bcbd22", "#dbdb8d"), ("#17becf", "#9edae5"))


def _frame(points: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(points or [], columns=["step", "value", "series"])


def _colours(points: list[dict[str, Any]]) -> dict[str, str]:
    """A colour per series of ``points``, for a LinePlot update sent after its value (the value left alone):
    one hue per metric, strong for the first run and light for the second.

    Why: Gradio's plot (6.31) builds its Vega spec - the column types and the colour domain - when
    a setting such as ``color_map`` changes, and on a new value only swaps the data. Showing a
    second run (its series carry a "run: " prefix), another kind of run (other losses), or a run
    after one with no evaluations yet (an empty frame: every column "nominal") drew axes and a
    legend with no lines. Sending the map with the value did not help (the spec was rebuilt
    before the new value arrived), so it is sent in a second event after the value: keyed by the
    series shown, it changes whenever they do and the spec is rebuilt from the new data.
    """
    series = list(dict.fromkeys(p["series"] for p in points))
    # Two runs: series are "<run>: <metric>", the first run's first (genimg.tasks.runs.curve_points).
    runs = list(dict.fromkeys(name.rpartition(": ")[0] for name in series))
    metrics = list(dict.fromkeys(name.rpartition(": ")[2] for name in series))
    return {name: PALETTE[metrics.index(name.rpartition(": ")[2]) % len(PALETTE)]
            [min(runs.index(name.rpartition(": ")[0]), 1)] for name in series}


def build(pool: Any, settings: Any) -> dict[str, Any]:
    """Lay out the tab inside the current Blocks context; return its components."""
    rows, choices = runs_table()
    first = choices[0][1] if choices else None
    with gr.Row():
        run = gr.Dropdown(choices=choices, value=first, label="Run", elem_id="training-run", scale=3)
        other = gr.Dropdown(choices=choices, value=None, label="Side by side with (optional)", elem_id="training-other",
                            scale=3)
        with gr.Column(scale=1, min_width=160):
            refresh = gr.Button("Refresh", elem_id="training-refresh")
            live = gr.Checkbox(value=False, label=f"Live (every {LIVE_SECONDS} s)", elem_id="training-live")
    alarms = gr.Markdown(elem_id="training-alarms")
    with gr.Row():
        losses = gr.LinePlot(x="step", y="value", color="series", title="Losses", elem_id="training-losses",
                             height=300)
        evals = gr.LinePlot(x="step", y="value", color="series", title="Evaluation (faithfulness, diversity)",
                            elem_id="training-evals", height=300)
    with gr.Row():
        with gr.Column():
            step = gr.Slider(0, 1, step=1, value=0, label="Checkpoint (sample grid)", elem_id="training-step")
            samples = gr.Image(label="Samples: fixed prompts across, seeds down", type="filepath", interactive=False,
                               elem_id="training-samples", height=260)
        with gr.Column():
            other_samples = gr.Image(label="Side-by-side run, nearest step", type="filepath",
                                     interactive=False, elem_id="training-other-samples", height=260, visible=False)
    table = gr.Dataframe(value=rows, headers=TABLE_COLUMNS, label="Runs (every folder, newest first)",
                         interactive=False, elem_id="training-table", wrap=True,
                         column_widths=["15%", "6%", "8%", "6%", "9%", "7%", "7%", "6%", "14%", "22%"])
    with gr.Accordion("Run card (settings, best checkpoint, last evaluation)", open=False):
        card = gr.JSON(show_label=False)
    timer = gr.Timer(LIVE_SECONDS, active=False)
    colour_maps = gr.State({"loss": {}, "eval": {}})  # show() -> restyle(): the curves are read once per event

    def show(run_dir, other_dir, index=None):
        dirs = [d for d in (run_dir, other_dir) if d]
        if not dirs:
            note = "No training runs yet: `python -m genimg train gan --steps 200` records one (see README)."
            return (_frame([]), _frame([]), note, gr.Slider(0, 1, value=0), None, None, None,
                    {"loss": {}, "eval": {}})
        grids = sample_steps(dirs[0])
        last = max(0, len(grids) - 1)
        index = last if index is None else min(int(index), last)
        paired = nearest_sample(sample_steps(other_dir), grids[index][0]) if other_dir and grids else None
        loss_points, eval_points = curve_points(dirs, "loss"), curve_points(dirs, "eval")
        return (_frame(loss_points), _frame(eval_points), alarms_markdown(dirs),
                gr.Slider(0, max(last, 1), step=1, value=index,  # Gradio refuses a slider whose max is its min
                          label=f"Checkpoint (sample grid): step {grids[index][0]}" if grids else "Checkpoint"),
                grids[index][1] if grids else None,
                gr.Image(value=paired[1] if paired else None, visible=bool(other_dir),
                         label=f"Side-by-side run at step {paired[0]} (nearest)" if paired else "Side-by-side run"),
                run_card(dirs[0]), {"loss": _colours(loss_points), "eval": _colours(eval_points)})

    def reload(run_dir, other_dir):
        rows, choices = runs_table()
        values = {d for _, d in choices}
        run_dir = run_dir if run_dir in values else (choices[0][1] if choices else None)
        other_dir = other_dir if other_dir in values else None
        return (gr.Dropdown(choices=choices, value=run_dir), gr.Dropdown(choices=choices, value=other_dir), rows,
                *show(run_dir, other_dir))

    def restyle(maps):
        return gr.LinePlot(color_map=maps["loss"]), gr.LinePlot(color_map=maps["eval"])

    outputs = [losses, evals, alarms, step, samples, other_samples, card, colour_maps]
    gr.on([run.change, other.change], show, [run, other], outputs, api_name=False).then(
        restyle, colour_maps, [losses, evals], api_name=False, show_progress="hidden")
    step.release(lambda r, o, i: show(r, o, i)[3:6], [run, other, step], [step, samples, other_samples],
                 api_name=False)
    gr.on([refresh.click, timer.tick], reload, [run, other], [run, other, table, *outputs], api_name=False,
          show_progress="hidden").then(restyle, colour_maps, [losses, evals], api_name=False, show_progress="hidden")
    live.change(lambda on: gr.Timer(active=bool(on)), live, timer, api_name=False, queue=False)

    def on_load(demo: gr.Blocks) -> None:
        """Show the newest run's curves on the page's first view (``demo.load``)."""
        demo.load(show, [run, other], outputs, api_name=False).then(restyle, colour_maps, [losses, evals],
                                                                     api_name=False, show_progress="hidden")

    return {"run": run, "table": table, "on_load": on_load}
