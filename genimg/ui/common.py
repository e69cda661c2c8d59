"""Helpers shared by the tabs: error translation, model choices, progress adapters."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, Callable

import gradio as gr

from genimg.errors import GenimgError
from genimg.resources import check_headroom

log = logging.getLogger("genimg.ui")


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn GenimgError into gr.Error with the same words; log and report anything else.

    The server keeps serving either way: the failure is the request's, not the app's.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            check_headroom()
            return fn(*args, **kwargs)
        except GenimgError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except gr.Error:
            raise
        except Exception as exc:
            log.exception("request failed in %s", fn.__name__)
            raise gr.Error(f"internal error ({type(exc).__name__}): {exc}. The server is still running; "
                           "try again or pick another model.", print_exception=False) from None

    return wrapper


MISSING = "weights missing"
# Result tables show every row: Gradio's default 500 px box would hide the last ones behind a scroll.
RESULTS_TABLE_HEIGHT = 4000


def model_choices(pool: Any, task: str) -> list[tuple[str, str]]:
    """(label, id) pairs for a model picker: catalog models for ``task``; those that cannot load here
    are labelled "— weights missing" (:func:`model_note` says how to add them)."""
    choices = []
    for spec in pool.catalog.values():
        if task not in spec.tasks:
            continue
        ok, _reason = pool.availability(spec.id)
        choices.append((spec.name if ok else f"{spec.name} — {MISSING}", spec.id))
    return choices


def model_note(pool: Any, model_id: str | None) -> str:
    """Markdown under a model picker: how to add missing weights, or what the model can draw."""
    from genimg.domains import domain_of

    if not model_id:
        return ""
    try:
        spec = pool.spec(model_id)
        ok, reason = pool.availability(spec.id)
    except GenimgError as exc:
        return f"⚠ {exc}"
    if not ok:
        return f"⚠ **{spec.name}: {MISSING}.** How to add them: {reason.removeprefix(MISSING + ': ')}"
    domain = domain_of(spec)
    return f"**Draws:** {domain.vocabulary}" if domain is not None else ""


def _domains(pool: Any, model_ids: Any) -> list[Any]:
    """The prompt domains of the chosen model(s), in order (models without one are skipped)."""
    from genimg.domains import domain_of

    found = []
    for model_id in [model_ids] if isinstance(model_ids, str) else list(model_ids or []):
        try:
            domain = domain_of(pool.spec(model_id))
        except GenimgError:  # a typed, unknown id: the run will say so
            continue
        if domain is not None:
            found.append(domain)
    return found


def prompt_note(pool: Any, model_ids: Any, prompt: str) -> str:
    """An inline note when ``prompt`` is outside what the chosen model(s) can draw (empty when fine)."""
    notes = [note for note in (d.check(prompt) for d in _domains(pool, model_ids)) if note]
    return f"ℹ {notes[0]}" if notes else ""


def example_prompts(pool: Any, model_ids: Any) -> list[list[str]]:
    """Clickable example prompts (Dataset samples) for the chosen model(s)' prompt domain."""
    domains = _domains(pool, model_ids)
    if domains:
        return [[p] for p in domains[0].examples()]
    return [["a lighthouse at dusk, oil painting"], ["a red fox in the snow, photograph"]]


def featured_examples(pool: Any, model_id: str | None, per_other: int = 2) -> list[list[str]]:
    """Generate's clickable examples as ``[prompt, model name]`` rows: the chosen model's own examples, then
    ``per_other`` of each other available model whose prompt domain differs (so another world - the
    emoji model beside the shapes models - is one click away, model included). Names are what the model
    picker shows; :func:`model_id_for_name` maps a clicked one back."""
    from genimg.domains import domain_of

    own_name = _spec_name(pool, model_id)
    rows = [[p[0], own_name] for p in example_prompts(pool, model_id)]
    own = {d.id for d in _domains(pool, model_id)}
    for spec in pool.catalog.values():
        domain = domain_of(spec)
        if domain is None or domain.id in own or "text-to-image" not in spec.tasks or not pool.availability(spec.id)[0]:
            continue
        own.add(domain.id)
        rows += [[prompt, spec.name] for prompt in domain.examples()[:per_other]]
    return rows


def _spec_name(pool: Any, model_id: str | None) -> str:
    if not model_id:
        return ""
    try:
        return pool.spec(model_id).name
    except GenimgError:
        return model_id


def model_id_for_name(pool: Any, name: str | None) -> str | None:
    """The catalog id of the model named ``name`` (an example row's model), or None when no model has it."""
    return next((spec.id for spec in pool.catalog.values() if spec.name == name), None)


def vocabulary_rows(pool: Any, model_id: str | None, query: str = "") -> tuple[list[list[str]], str]:
    """The chosen model's searchable vocabulary: (rows matching ``query``, a one-line count); ([], "") when
    its domain lists no words (open-vocabulary models)."""
    domains = _domains(pool, model_id)
    if not domains or not domains[0].words():
        return [], ""
    domain = domains[0]
    rows, total = domain.search(query), len(domain.words())
    shown = f"{len(rows)} of {total}" if (query or "").strip() else f"all {total}"
    return rows, f"{domain.label}: {shown} words"


# Each Gradio progress update is a message through its event loop (about 1 ms, measured: 20 steps
# of the embedded default added 20 ms to a 0.5 s call); a person cannot read more than ~10 a second.
PROGRESS_INTERVAL_S = 0.1


def _throttled(send: Callable[[float, bool], None]) -> Callable[[float, bool], None]:
    """Call ``send(value, final)`` at most every PROGRESS_INTERVAL_S, and always for the final update."""
    last = [float("-inf")]

    def maybe(value: float, final: bool) -> None:
        now = time.perf_counter()
        if final or now - last[0] >= PROGRESS_INTERVAL_S:
            last[0] = now
            send(value, final)

    return maybe


def step_progress(progress: gr.Progress, desc: str) -> Callable[..., None]:
    """Adapt a task's ``progress(step, total)`` callback to Gradio's progress bar (throttled)."""
    state: dict[str, Any] = {}
    send = _throttled(lambda _value, _final: progress((state["step"], state["total"]), desc=state["desc"],
                                                      unit="steps"))

    def update(step: int, total: int, *label: Any) -> None:
        state.update(step=step, total=total, desc=f"{desc} {label[0]}" if label else desc)
        send(step, step >= total)

    return update


def cells_progress(progress: gr.Progress) -> Callable[[Any], None]:
    """Adapt a side-by-side run's progress (genimg.runner.Progress) to Gradio's progress bar.

    The bar fills by cells done (the running cell's steps counted in); the text names the cell and
    its own steps, e.g. "2/3 genimg-fewstep: step 3/4".
    """

    send = _throttled(lambda _value, _final: progress(state["p"].done / max(1, state["p"].cells),
                                                      desc=state["p"].describe()))
    state: dict[str, Any] = {}

    def update(p: Any) -> None:
        state["p"] = p
        send(p.done, p.index >= p.cells or (p.steps > 0 and p.step >= p.steps))

    return update
