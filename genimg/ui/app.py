"""The dashboard: a Gradio Blocks app with one tab per capability over one model pool."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
from typing import Any

import gradio as gr

from genimg import __version__
from genimg.config import settings as read_settings
from genimg.imageio import guard_decoders
from genimg.models.catalog import default_model
from genimg.models.device import configure_cpu_threads
from genimg.models.pool import ModelPool, get_pool
from genimg.ui import (arena_tab, ask_tab, compare_tab, evaluate_tab, generate_tab, grid_tab, info_tab, metrics_tab,
                       preview, restore_tab, style_tab, training_tab)
from genimg.ui.gradio_speedups import memoise_block_signatures

log = logging.getLogger("genimg.ui")

CSS = """
#generate-timing, #compare-table, #grid-table, #restore-table, #style-table, #metrics-table, #evaluate-table {
  font-variant-numeric: tabular-nums; }
/* Results read at a fixed, comfortable size (240-280 px a tile: four a row at 1440 px, since auto-fill counts
   the largest size), left to right, never clipped in a box. */
.results-grid .grid-container { grid-template-columns: repeat(auto-fill, minmax(240px, 280px)) !important;
  justify-content: start; }
.results-grid .thumbnail-item { aspect-ratio: 1 / 1; }
.results-grid .grid-wrap, .model-columns .grid-wrap { max-height: none !important; height: auto !important;
  min-height: 0 !important; overflow: visible !important; }
.results-grid, .model-columns { min-height: 0 !important; }
/* Compare: exactly one column per model (Gradio sets --grid-cols from the model count). */
.model-columns .grid-container { grid-template-columns: repeat(var(--grid-cols), minmax(160px, 300px)) !important;
  justify-content: start; }
.model-columns .thumbnail-item { aspect-ratio: 1 / 1; }
/* Grid: each page (one per Z value) at its own size, up to the page width, one under the other. */
.grid-pages .grid-wrap { max-height: none !important; height: auto !important; min-height: 0 !important;
  overflow: visible !important; }
.grid-pages .grid-container { grid-template-columns: minmax(0, max-content) !important; }
.grid-pages .thumbnail-item { aspect-ratio: auto !important; height: auto !important; }
.grid-pages .thumbnail-item img { width: auto !important; max-width: 100% !important; height: auto !important;
  object-fit: contain !important; }
.grid-pages { min-height: 0 !important; }
.footnote { font-size: var(--text-sm); color: var(--body-text-color-subdued); }
/* Evaluate's per-model table has a column per metric: fit the page and wrap, rather than scroll sideways. */
#evaluate-table table, #grid-table table { table-layout: fixed; width: 100% !important; }
#evaluate-table th, #evaluate-table td, #grid-table th, #grid-table td { min-width: 0 !important;
  white-space: normal !important; }
.caption-label { white-space: normal !important; max-width: 100% !important; }
/* Arena: both images at one readable size, whatever their own (the 64 px models are enlarged crisply). */
.arena-pair img { width: 300px !important; height: 300px !important; object-fit: contain; }
"""


# Small outputs (the 64 px embedded models) are enlarged crisply on screen -- nearest-neighbour when an
# image is shown at 1.5x or more of its own size -- while the PNG a visitor downloads stays native. CSS
# alone cannot ask an image its natural size, so a capturing `load` listener does it.
HEAD = """<script>
document.addEventListener("load", (event) => {
  const img = event.target;
  if (img.tagName !== "IMG" || !img.closest(".results-grid, .model-columns")) return;
  img.style.imageRendering = img.naturalWidth * 1.5 <= img.clientWidth ? "pixelated" : "auto";
}, true);
</script>"""


def build_app(pool: ModelPool | None = None) -> gr.Blocks:
    """Build the Blocks app over ``pool`` (the process-wide pool by default)."""
    pool = pool or get_pool()
    env = read_settings()
    guard_decoders(env.limits)  # every Pillow decode in the server, Gradio's included, is bounded from here on
    memoise_block_signatures()  # each new session (every REST call without one) builds the config of ~360 blocks
    with gr.Blocks(title="genimg", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"# genimg {__version__}\nFast image generation and fair side-by-side model comparison"
                    + (" · hosted demo: catalog models only, tighter limits" if env.hosted else "")
                    + (f" · {len(pool.routes())} models served by Ray Serve deployments" if pool.routes() else ""))
        preview.build(demo)  # ?preview=<id>: a shared result, read-only, above the tabs
        with gr.Tabs() as tabs:
            with gr.Tab("Generate", id="generate"):
                generate = generate_tab.build(pool, env)
            with gr.Tab("Compare", id="compare"):
                compare_tab.build(pool, env)
            with gr.Tab("Grid", id="grid"):
                grid_tab.build(pool, env)
            with gr.Tab("Arena", id="arena"):
                arena_tab.build(pool, env)
            with gr.Tab("Leaderboard", id="leaderboard") as leaderboard_tab:
                board = arena_tab.build_leaderboard(pool, env)
            leaderboard_tab.select(**board["load"])
            with gr.Tab("Style", id="style"):
                style_tab.build(pool, env)
            with gr.Tab("Restore", id="restore"):
                restore_tab.build(pool, env)
            with gr.Tab("Metrics", id="metrics"):
                metrics_tab.build(pool, env)
            with gr.Tab("Evaluate", id="evaluate"):
                evaluate_tab.build(pool, env)
            with gr.Tab("Ask", id="ask"):
                ask_tab.build(pool, env)
            with gr.Tab("PNG Info", id="info"):
                info_tab.build(pool, env, generate=generate, tabs=tabs)
            with gr.Tab("Training", id="training"):
                training = training_tab.build(pool, env)
        training["on_load"](demo)  # the curves of the newest run on first view
    demo.queue(max_size=env.queue_size, default_concurrency_limit=env.concurrency)
    return demo


def auth_checker(spec: str | None):
    """A Gradio auth callable for ``GENIMG_AUTH="user:password"`` (constant-time compare), or None."""
    if not spec:
        return None
    user, sep, password = spec.partition(":")
    if not sep or not user or not password:
        raise ValueError("GENIMG_AUTH must look like user:password")
    want = hashlib.sha256(f"{user}\0{password}".encode()).digest()

    def check(u: str, p: str) -> bool:
        got = hashlib.sha256(f"{u}\0{p}".encode()).digest()
        return hmac.compare_digest(got, want)

    return check


def server_address() -> tuple[str, int]:
    """Host and port: GRADIO_SERVER_NAME/GRADIO_SERVER_PORT, or PORT (Deta Space), else 127.0.0.1:7860."""
    port = os.environ.get("GRADIO_SERVER_PORT") or os.environ.get("PORT") or "7860"
    host = os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if os.environ.get("PORT") else "127.0.0.1")
    return host, int(port)


def preload(pool: ModelPool) -> None:
    """Load the default model in the background so the first visitor gets a warm model.

    Only weights already on this machine are preloaded: starting the server never downloads.
    """
    from genimg.models import backends

    model_id = default_model(pool.catalog)
    if not model_id or pool.route(model_id) is not None or not pool.availability(model_id)[0]:
        return  # nothing to preload, or it is served (and loaded) by its own deployment
    spec = pool.spec(model_id)
    is_present = getattr(backends.get(spec.backend), "is_present", None)
    if is_present is not None and not is_present(spec):
        return

    def load() -> None:
        try:
            with pool.acquire(model_id):
                pass
        except Exception:  # a broken default must not stop the server; requests will report it
            log.exception("preloading %s failed", model_id)

    threading.Thread(target=load, name="genimg-preload", daemon=True).start()


def launch_options(env: Any = None) -> dict[str, Any]:
    """The security-relevant ``launch()`` options, from the settings (one place; tests use it too).

    No ``allowed_paths``: Gradio serves only its upload/cache folders and files the app returned
    (uploads are read through the image gate, never by a path a request names). ``max_file_size``
    refuses larger uploads before they are written; ``auth`` from ``GENIMG_AUTH``.
    """
    env = env or read_settings()
    return dict(auth=auth_checker(env.auth), show_error=True, max_file_size=env.limits.max_upload_bytes,
                allowed_paths=[])


def launch(**overrides: Any) -> None:
    """Build and serve the dashboard (blocks until the server stops)."""
    env = read_settings()
    configure_cpu_threads()
    pool = get_pool()
    demo = build_app(pool)
    host, port = server_address()
    if os.environ.get("GENIMG_PRELOAD", "1") != "0":
        preload(pool)
    kwargs: dict[str, Any] = dict(server_name=host, server_port=port, css=CSS, head=HEAD, **launch_options(env))
    kwargs.update(overrides)
    demo.launch(**kwargs)
