"""Bench section ``dashboard_overhead``: what the task function and the dashboard add to a bare call.

One request, four ways, interleaved trial by trial: the bare diffusers pipeline, the task
function (:func:`genimg.tasks.generate.generate`), ``/generate`` over plain HTTP (Gradio's
REST call API, as curl would) and ``/generate`` through ``gradio_client``, against the real
app served on a free loopback port. Outside checks read ``http_over_bare`` from here. Then what a
person waits for: click on Generate in Chromium to the new image painted on screen, interleaved
with the bare call (``browser.click_to_image_over_bare``; skipped without Debian's chromium).
"""

from __future__ import annotations

from typing import Any

import torch

from genimg.bench.timing import interleaved, ratio


def bench_dashboard_overhead(catalog: dict[str, Any], model_id: str, repeats: int) -> dict[str, Any]:
    """Bare pipeline call vs genimg.tasks.generate vs /generate over HTTP and through gradio_client.

    Takes a catalog (id -> ModelSpec), the model and the trials per variant. Returns the
    timings, the ratios (``direct_over_bare``, ``http_over_bare``, ``api_over_bare``,
    ``api_over_direct``) and the goal. Raises RuntimeError when /generate over HTTP fails.
    """
    import httpx
    from gradio_client import Client

    from genimg.models.pool import ModelPool
    from genimg.tasks.generate import GenerateRequest, generate, resolve_request
    from genimg.ui.app import build_app

    pool = ModelPool(dict(catalog))
    spec = pool.spec(model_id)
    request = GenerateRequest(prompt="a small red circle on a blue background", model=model_id, seed=1234)
    resolved = resolve_request(request, spec)
    with pool.acquire(model_id) as lease:
        pipe = lease.model

    def bare() -> None:
        with torch.inference_mode():
            pipe(prompt=resolved["prompt"], width=resolved["width"], height=resolved["height"],
                 num_inference_steps=resolved["steps"], guidance_scale=resolved["guidance"],
                 generator=[torch.Generator("cpu").manual_seed(resolved["seed"])], output_type="pil")

    def direct() -> None:
        generate(request, pool)

    demo = build_app(pool)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)

        def through_api() -> None:
            client.predict(request.prompt, "", model_id, None, None, None, None, "default", 1234, 1,
                           api_name="/generate")

        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)

        def through_http() -> None:
            call_generate_http(http, [request.prompt, "", model_id, None, None, None, None, "default", 1234, 1])

        timings = interleaved({"bare_pipeline": bare, "direct_task": direct, "http_api": through_http,
                               "gradio_client": through_api}, repeats)
        http.close()
        browser = _browser_click_to_image(f"http://127.0.0.1:{port}/", request.prompt, bare, repeats)
    finally:
        import contextlib
        import sys

        with contextlib.redirect_stdout(sys.stderr):  # Gradio prints "Closing server..." on stdout
            demo.close()
    return {
        "model": model_id, "params": {k: resolved[k] for k in ("width", "height", "steps", "guidance")},
        **timings,
        "direct_over_bare": ratio(timings, "direct_task", "bare_pipeline"),
        "http_over_bare": ratio(timings, "http_api", "bare_pipeline"),
        "api_over_bare": ratio(timings, "gradio_client", "bare_pipeline"),
        "api_over_direct": ratio(timings, "gradio_client", "direct_task"),
        "browser": browser,
        "goal": "http_over_bare and api_over_bare <= 1.10 on the embedded diffusion model",
    }


def call_generate_http(http: Any, data: list[Any]) -> dict[str, Any]:
    """``/generate`` as curl (or any HTTP client) calls it: Gradio's REST call API, then fetch the image.

    ``http`` is an ``httpx.Client`` on the dashboard's base URL; ``data`` the endpoint's inputs.
    gradio_client polls its SSE message queue every 50 ms (gradio_client/utils.py), so this is the
    path that shows the server's own overhead. Returns the JSON record (the third output).
    Raises RuntimeError when the call fails.
    """
    import json

    event = http.post("/gradio_api/call/generate", json={"data": data}).json()["event_id"]
    payload, kind = None, None
    with http.stream("GET", f"/gradio_api/call/generate/{event}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("complete", "error"):
                payload = json.loads(line.split(":", 1)[1])
                break
    if kind != "complete" or not payload:
        raise RuntimeError(f"/generate over HTTP failed: {kind} {payload}")
    http.get(payload[0][0]["image"]["url"]).raise_for_status()
    return payload[2]


def _browser_click_to_image(url: str, prompt: str, bare: Any, repeats: int) -> dict[str, Any]:
    """Click-to-image in a real browser vs the bare call, interleaved; {"skipped": why} without Chromium."""
    import os
    import time

    from genimg.bench.timing import stats

    chromium = "/usr/bin/chromium"
    if not os.path.exists(chromium):
        return {"skipped": f"{chromium} not found (apt-get install chromium)"}
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"skipped": "playwright is not installed (requirements-test.txt)"}
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
    clicks: list[float] = []
    bares: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args, headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(url, wait_until="domcontentloaded")
        page.locator("#generate-prompt textarea").fill(prompt)
        # Timed in the page's own clock, from the click event to the new image decoded: Playwright's
        # own click (actionability checks, ~50-100 ms) is not what a person waits for.
        page.evaluate("""() => document.addEventListener("click", e => {
            if (e.target.closest("#generate-button")) window.__genimgClick = performance.now(); }, true)""")
        for trial in range(repeats + 1):  # the first is a warm-up (page, first file fetch)
            before = page.evaluate("() => document.querySelector('#generate-gallery img')?.src || ''")
            page.locator("#generate-button").click()
            # The seed is random (-1), so every result is a new file: wait for it to be decoded on screen.
            handle = page.wait_for_function("""before => { const img = document.querySelector('#generate-gallery img');
                return img && img.src !== before && img.complete && img.naturalWidth > 0
                    && (performance.now() - window.__genimgClick) / 1000; }""", arg=before, timeout=120_000,
                                            polling="raf")
            elapsed = float(handle.json_value())
            t0 = time.perf_counter()
            bare()
            if trial:
                clicks.append(elapsed)
                bares.append(time.perf_counter() - t0)
        browser.close()
    click, base = stats(clicks), stats(bares)
    return {"click_to_image": click, "bare_pipeline": base,
            "click_to_image_over_bare": click["median_s"] / base["median_s"],
            "note": "Chromium on loopback, the Generate tab's default model and settings, seed -1 (a new file each "
                    "time); from the click to the new image decoded on screen"}
