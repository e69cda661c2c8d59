"""Arena and Leaderboard tabs: blind side-by-side votes, and the Bradley–Terry ratings they add up to.

A battle shows two images as A and B: neutral file names, no metadata, nothing naming a model
until the vote. API: ``/arena_battle`` (prompt, models, seed -> image A, image B, battle id),
``/arena_vote`` (battle_id, choice -> the revealed models under "a" and "b"), ``/leaderboard``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from genimg.arena.plot import interval_svg
from genimg.arena.prompts import GRAMMAR, draw
from genimg.errors import GenimgError
from genimg.tasks.arena import (LEADERBOARD_COLUMNS, battle_images, export, leaderboard, share_battle, start_battle,
                                vote)
from genimg.ui.common import MISSING, RESULTS_TABLE_HEIGHT, cells_progress, model_choices, user_errors
from genimg.ui.preview import share_markdown

# Plain arrows, not emoji: a browser without an emoji font draws those as empty boxes.
VOTES = (("A", "← A is better", "arena-vote-a"), ("tie", "Tie", "arena-vote-tie"),
         ("both_bad", "Both bad", "arena-vote-both-bad"), ("B", "B is better →", "arena-vote-b"))
CATEGORIES = ["all", "single", "position", "count", "relation"]  # the grammar suite's scene kinds
HOW = ("Two models draw the same prompt with the same seed. Judge the images, not the names: the models are "
       "revealed, with their timings, after your vote. Tick models to choose them, or leave them all unticked "
       "to have them drawn at random among the models that can draw the prompt. With 3 or 4 images you rank them "
       "instead.")
RATING_NOTE = ("**rating** — Bradley–Terry strength on an Elo-like scale (ratings average 1000; 400 points = "
               "10:1 odds of being preferred), **95 % interval** from {rounds} bootstrap resamples of the battles. "
               "**battles** — voted battles the model was in; **wins** — votes for it; a tie or \"both bad\" counts "
               "half a win for each side in the rating and is listed apart.")


def _session(request: gr.Request | None) -> str | None:
    """The anonymous session id Gradio gives a browser tab (the only thing kept about a visitor)."""
    return getattr(request, "session_hash", None) or None


def reveal_markdown(reveal: dict[str, Any]) -> str:
    """What the vote revealed: each letter's model and timings, and the vote."""
    lines = []
    for letter in "abcd":
        cell = reveal.get(letter)
        if not cell:
            continue
        speed = (f"{cell['steps_per_s']:.1f} steps/s" if cell.get("steps", 0) > 1
                 else f"{cell.get('images_per_s') or 0:.1f} images/s")
        lines.append(f"**{letter.upper()}** was **{cell.get('name', cell['model'])}** (`{cell['model']}`) — "
                     f"{cell['wall_s']:.3f} s, {speed}, {cell['width']}×{cell['height']} px"
                     + (f", first load {cell['load_s']:.2f} s" if cell.get("load_s") else ""))
    said = {"A": "A is better", "B": "B is better", "tie": "a tie", "both_bad": "both bad"}.get(reveal["choice"],
                                                                                               reveal["choice"])
    return "  \n".join(lines + [f"Your vote: **{said}** — counted. Start a new battle for the next one."])


def build(pool: Any, settings: Any) -> dict[str, Any]:
    """Lay out the Arena tab inside the current Blocks context; return its components."""
    choices = [(label, value) for label, value in model_choices(pool, "text-to-image") if MISSING not in label]
    gr.Markdown(HOW, elem_classes=["footnote"])
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Prompt", lines=1, max_lines=6, elem_id="arena-prompt",
                                placeholder="a blue circle above a small yellow square on a black background")
            draw_button = gr.Button("Draw a prompt from the scene grammar's evaluation set", size="sm",
                                    elem_id="arena-draw")
        with gr.Column(scale=2):
            models = gr.CheckboxGroup(choices=choices, value=[], elem_id="arena-models",
                                      label="Models (none ticked: drawn at random)")
            with gr.Row():
                k = gr.Radio(choices=[2, 3, 4], value=2, label="Images per battle (3-4: rank them)",
                             elem_id="arena-k")
                seed = gr.Number(label="Seed (-1 = random; the same for all)", value=-1, precision=0)
            run = gr.Button("New battle", variant="primary", elem_id="arena-button")
    drawn = gr.State(None)  # (prompt, category) of a drawn prompt: the category holds while the text is unchanged
    with gr.Row(elem_classes=["model-columns", "arena-pair"]):
        image_a = gr.Image(label="A", type="pil", format="png", interactive=False, height=320, elem_id="arena-a")
        image_b = gr.Image(label="B", type="pil", format="png", interactive=False, height=320, elem_id="arena-b")
        image_c = gr.Image(label="C", type="pil", format="png", interactive=False, height=320, elem_id="arena-c",
                           visible=False)
        image_d = gr.Image(label="D", type="pil", format="png", interactive=False, height=320, elem_id="arena-d",
                           visible=False)
    with gr.Row(visible=True) as pair_votes:
        buttons = [gr.Button(label, interactive=False, elem_id=elem) for _choice, label, elem in VOTES]
    with gr.Row(visible=False) as rank_votes:
        ranking = gr.Textbox(label="Your ranking, best first (e.g. C>A>B)", max_lines=1, scale=3,
                             elem_id="arena-ranking")
        rank_button = gr.Button("Submit ranking", interactive=False, scale=1, elem_id="arena-rank-button")
    reveal = gr.Markdown(elem_id="arena-reveal")
    with gr.Row():
        share = gr.Button("Share this result", interactive=False, size="sm", elem_id="arena-share")
        link = gr.Markdown(elem_id="arena-link")
    battle_id = gr.Textbox(label="Battle id", interactive=False, max_lines=1, elem_id="arena-battle-id")
    vote_controls = [*buttons, rank_button]

    def on_draw() -> tuple[str, tuple[str, str | None]]:
        text, category = draw(GRAMMAR)
        return text, (text, category)

    @user_errors
    def arena_battle(prompt, models, seed, k=2, drawn_prompt=None, request: gr.Request = None,
                     progress=gr.Progress()):
        # Parameter names are the API's (/arena_battle): prompt, models, seed, k. Its outputs are images A and B
        # and the battle id; a battle of 3-4 shows C and D in the tab through the step after it.
        category = drawn_prompt[1] if drawn_prompt and drawn_prompt[0] == (prompt or "").strip() else None
        result = start_battle(prompt, list(models or []) or None, k=int(k or 2), seed=-1 if seed is None else seed,
                              category=category, session=_session(request), pool=pool,
                              progress=cells_progress(progress))
        return result.images[0], result.images[1], result.battle_id

    def arena_vote(battle_id: str, choice: str, request: gr.Request = None) -> dict:
        """Vote on a battle: choice is A, B, tie or both_bad (a ranking such as C>A>B for 3-4 images).
        Returns the revealed models under "a", "b" (...) with their timings."""
        try:
            return vote(battle_id, choice, session=_session(request))
        except GenimgError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    def vote_handler(choice: str | None):
        @user_errors
        def on_vote(current_id, typed=None, request: gr.Request = None):
            revealed = vote(current_id, typed if choice is None else choice, session=_session(request))
            return (reveal_markdown(revealed), *[gr.update(interactive=False)] * len(vote_controls),
                    gr.update(interactive=True))
        return on_vote

    @user_errors
    def on_share(current_id, request: gr.Request = None):
        return share_markdown(share_battle(current_id), request)

    def cleared():
        return (None, None, None, None, "", "", "", "", *[gr.update(interactive=False)] * len(vote_controls),
                gr.update(interactive=False))

    @user_errors
    def ready(current_id):
        images = battle_images(current_id)
        extra = [gr.update(value=images[i] if i < len(images) else None, visible=i < len(images)) for i in (2, 3)]
        pair = len(images) == 2
        return (*extra, gr.update(visible=pair), gr.update(visible=not pair),
                *[gr.update(interactive=True) for _ in vote_controls])

    draw_button.click(on_draw, None, [prompt, drawn], api_name=False, queue=False)
    (run.click(cleared, None, [image_a, image_b, image_c, image_d, battle_id, reveal, link, ranking, *vote_controls,
                               share], api_name=False, queue=False)
        .then(arena_battle, [prompt, models, seed, k, drawn], [image_a, image_b, battle_id], api_name="arena_battle")
        .success(ready, [battle_id], [image_c, image_d, pair_votes, rank_votes, *vote_controls], api_name=False))
    for (choice, _label, _elem), button in zip(VOTES, buttons):
        button.click(vote_handler(choice), [battle_id], [reveal, *vote_controls, share], api_name=False)
    gr.on([rank_button.click, ranking.submit], vote_handler(None), [battle_id, ranking], [reveal, *vote_controls, share],
          api_name=False)
    share.click(on_share, [battle_id], link, api_name=False)
    gr.api(arena_vote, api_name="arena_vote")
    return {"prompt": prompt, "models": models, "run": run, "image_a": image_a, "image_b": image_b,
            "battle_id": battle_id, "reveal": reveal, "buttons": buttons}


def build_leaderboard(pool: Any, settings: Any) -> dict[str, Any]:
    """Lay out the Leaderboard tab; return its components and the ``refresh`` event's arguments."""
    with gr.Row():
        category = gr.Dropdown(choices=CATEGORIES, value="all", label="Prompt category", allow_custom_value=True,
                               elem_id="leaderboard-category", scale=2)
        refresh = gr.Button("Refresh", variant="primary", elem_id="leaderboard-button", scale=1)
    summary = gr.Markdown(elem_id="leaderboard-summary")
    table = gr.Dataframe(headers=list(LEADERBOARD_COLUMNS), interactive=False, max_height=RESULTS_TABLE_HEIGHT,
                         elem_id="leaderboard-table")
    plot = gr.HTML(elem_id="leaderboard-plot")
    gr.Markdown(RATING_NOTE.format(rounds=200), elem_classes=["footnote"])
    files = gr.File(label="Export (leaderboard and every vote, CSV and JSON)", file_count="multiple",
                    interactive=False, elem_id="leaderboard-files")

    @user_errors
    def on_leaderboard(category):
        chosen = None if not category or category == "all" else category
        board = leaderboard(category=chosen)
        rows = [[row[c] for c in LEADERBOARD_COLUMNS] for row in board["rows"]]
        if board["votes"]:
            text = (f"**{board['votes']} voted battle{'' if board['votes'] == 1 else 's'}**" + (f" in category *{chosen}*" if chosen else "")
                    + f" · {len(rows)} models")
        else:
            text = "No votes yet" + (f" in category *{chosen}*" if chosen else "") + ": vote in the Arena tab."
        folder = Path(tempfile.mkdtemp(prefix="genimg-leaderboard-"))
        paths = []
        for fmt in ("csv", "json"):
            for name, body in export(fmt).items():
                (folder / name).write_text(body, encoding="utf-8")
                paths.append(str(folder / name))
        return text, rows, interval_svg(board["rows"]), paths

    outputs = [summary, table, plot, files]
    refresh.click(on_leaderboard, [category], outputs, api_name="leaderboard")
    return {"table": table, "plot": plot, "summary": summary, "refresh": refresh,
            "load": dict(fn=on_leaderboard, inputs=[category], outputs=outputs, api_name=False)}
