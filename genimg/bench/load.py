"""Load test: many concurrent gradio clients against the dashboard on the loopback interface.

Every request must be answered, or refused by Gradio's bounded queue ("Queue is full! Please
try again."; the browser shows "This application is currently busy. Please try again."), and
never lost or answered with another request's result:

- ``/generate``: each request asks for one (prompt, seed) pair out of a small set; its image must
  match the one a sequential run of the same pair gave (the warm-up), and the PNG's record must
  carry its own prompt and seed.
- ``/metrics``: each request uploads one (image, reference) pair out of a small set; its PSNR and
  SSIM must equal scikit-image's for that pair.

The server's resident memory is read after the warm-up and after the load (after a garbage
collection when the server runs in this process), to show that it returns to its baseline.
Bounded in count and time; loopback only. ``python -m genimg bench --load`` runs the long form.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

import numpy as np

from genimg.errors import GenimgError

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
ENDPOINTS = ("/generate", "/metrics")
BUSY_WORDS = ("queue is full", "busy")
PAIRS = 4            # distinct inputs per endpoint: answers are checked against their own pair
MATCH_TOLERANCE = 2.0  # mean |difference| in 0..255 between an answer and its reference image


@dataclass
class Outcome:
    """One request: what was sent, what came back."""

    endpoint: str
    pair: int
    status: str = "lost"    # answered | rejected | error | lost
    detail: str = ""
    seconds: float = 0.0
    answer: Any = None


@dataclass
class _Inputs:
    generate: list[tuple[str, int]] = field(default_factory=list)        # (prompt, seed)
    metrics: list[tuple[str, str, float, float]] = field(default_factory=list)  # paths + expected psnr, ssim
    reference_images: list[np.ndarray] = field(default_factory=list)


def _check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host not in LOOPBACK and f"[{host}]" not in LOOPBACK:
        raise GenimgError(f"the load test only runs against a loopback address (127.0.0.1), not {host!r}")


def _rss(pid: int | None) -> int | None:
    if pid is None:
        return None
    import psutil

    return psutil.Process(pid).memory_info().rss


def _metric_inputs(folder: Path) -> list[tuple[str, str, float, float]]:
    """(image path, reference path, expected PSNR, expected SSIM) pairs, each pair different."""
    from PIL import Image
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(0)
    reference = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    ref_path = folder / "reference.png"
    Image.fromarray(reference).save(ref_path)
    pairs = []
    for i in range(PAIRS):
        noise = rng.normal(0, 4.0 * (i + 1), reference.shape)
        image = np.clip(reference + noise, 0, 255).astype(np.uint8)
        path = folder / f"noisy-{i}.png"
        Image.fromarray(image).save(path)
        psnr = float(peak_signal_noise_ratio(reference, image, data_range=255))
        ssim = float(structural_similarity(reference, image, channel_axis=2, data_range=255, gaussian_weights=True,
                                           sigma=1.5, use_sample_covariance=False))
        pairs.append((str(path), str(ref_path), psnr, ssim))
    return pairs


def _image_array(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64)


class _Caller:
    """Sends one request to an endpoint with a gradio_client Client and checks the answer."""

    def __init__(self, inputs: _Inputs, model: str, size: int | None, steps: int | None):
        self.inputs, self.model, self.size, self.steps = inputs, model, size, steps

    def send(self, client: Any, endpoint: str, pair: int) -> Any:
        return client.predict(*_args(self, endpoint, pair), api_name=endpoint)

    def mismatch(self, endpoint: str, pair: int, answer: Any) -> str:
        """Why ``answer`` is not the answer to request ``pair`` ("" when it is)."""
        if endpoint == "/metrics":
            _image, _ref, psnr, ssim = self.inputs.metrics[pair]
            got = answer[1]["metrics"]
            if abs(got["psnr"]["value"] - psnr) > 1e-6 * max(1.0, psnr) or abs(got["ssim"]["value"] - ssim) > 1e-6:
                return f"metrics {got['psnr']['value']}/{got['ssim']['value']} != expected {psnr}/{ssim}"
            return ""
        from genimg.outputs import read_record

        prompt, seed = self.inputs.generate[pair]
        gallery = answer[0]
        if len(gallery) != 1:
            return f"{len(gallery)} images for a batch of 1"
        record = read_record(gallery[0]["image"])
        if record.get("seed") != seed or record.get("prompt") != prompt:
            return f"record says seed {record.get('seed')} / {record.get('prompt')!r}, asked {seed} / {prompt!r}"
        if self.inputs.reference_images:
            image = _image_array(gallery[0]["image"])
            distances = [float(np.abs(image - ref).mean()) if ref.shape == image.shape else float("inf")
                         for ref in self.inputs.reference_images]
            if distances[pair] > MATCH_TOLERANCE or int(np.argmin(distances)) != pair:
                return f"image differs from its sequential reference (mean |diff| {distances[pair]:.2f})"
        return ""


def _classify(exc: BaseException) -> tuple[str, str]:
    """(status, detail) for a request that raised: "rejected" by the full queue, else "error"."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if type(exc).__name__ == "QueueError" or any(w in text.lower() for w in BUSY_WORDS):
        return "rejected", text
    return "error", f"{type(exc).__name__}: {text}"


def run_load(target: Any, clients: int = 16, requests_per_client: int = 3,
             endpoints: Sequence[str] = ENDPOINTS, model: str | None = None, size: int | None = None,
             steps: int | None = None, server_pid: int | None = None, reference: bool = True,
             timeout_s: float = 600.0, before_load: Callable[[], None] | None = None) -> dict[str, Any]:
    """Send ``clients`` × ``requests_per_client`` requests concurrently and account for each.

    ``target``: a loopback URL of a running dashboard, or a ``gr.Blocks`` app (served here on a free
    loopback port for the run, then closed). Client *c*'s request *i* goes to
    ``endpoints[(c + i) % len(endpoints)]``. ``model``/``size``/``steps``: for ``/generate``
    (``model`` required there). ``server_pid``: whose memory to read when ``target`` is a URL
    (this process when it is an app). ``reference``: run each input once sequentially first
    (the warm-up) and check every image against it; without it only the PNG records are checked.
    ``before_load``: called after the warm-up, just before the clients fire (tests use it to
    stall the server so the queue fills).
    Returns JSON-able figures: sent, answered, rejected, errors, lost, mismatched, per-endpoint
    counts, resident memory in bytes (None when unknown) after the warm-up (rss_before), halfway
    (rss_half, every client paused) and at the end (rss_after), rss_growth = rss_after - rss_half
    over the second half's requests (rss_growth_requests), seconds, requests_per_s,
    latency percentiles, and up to 5 example messages per kind.
    Raises GenimgError for a non-loopback URL, an unknown endpoint or a missing model.
    """
    from gradio_client import Client

    endpoints = tuple(endpoints)
    for endpoint in endpoints:
        if endpoint not in ENDPOINTS:
            raise GenimgError(f"the load test knows {', '.join(ENDPOINTS)}, not {endpoint!r}")
    if "/generate" in endpoints and not model:
        raise GenimgError("the load test needs a model for /generate")
    if clients < 1 or requests_per_client < 1:
        raise GenimgError("clients and requests per client must be at least 1")

    demo = None
    if isinstance(target, str):
        url = target
        _check_loopback(url)
    else:
        import os
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        demo = target
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, show_error=True)
        url = f"http://127.0.0.1:{port}/"
        server_pid = os.getpid()

    workdir = tempfile.TemporaryDirectory(prefix="genimg-load-")
    try:
        inputs = _Inputs(generate=[(f"load test pair {i}: a red circle", 1000 + i) for i in range(PAIRS)])
        if "/metrics" in endpoints:
            inputs.metrics = _metric_inputs(Path(workdir.name))
        caller = _Caller(inputs, model or "", size, steps)
        warm_client = Client(url, verbose=False, download_files=workdir.name)

        # Warm-up, sequential: loads the model, and gives the reference image of each generate pair.
        warmup_started = time.perf_counter()
        for endpoint in endpoints:
            for pair in range(PAIRS if reference else 1):
                answer = caller.send(warm_client, endpoint, pair)
                if endpoint == "/generate" and reference:
                    inputs.reference_images.append(_image_array(answer[0][0]["image"]))
        warmup_s = time.perf_counter() - warmup_started
        if demo is not None:
            gc.collect()
        rss_before = _rss(server_pid)

        plan = [[endpoints[(c + i) % len(endpoints)] for i in range(requests_per_client)] for c in range(clients)]
        outcomes: list[list[Outcome]] = [[] for _ in range(clients)]
        counter = iter(range(10**9))
        counter_lock = threading.Lock()
        half = requests_per_client // 2
        start = threading.Barrier(clients, timeout=timeout_s)
        # Halfway, every client waits while the memory is read: the first half has grown the thread
        # pools and allocator arenas that concurrency needs once; growth over the second half is a leak.
        at_half, resume = (threading.Barrier(clients + 1, timeout=timeout_s) for _ in range(2))
        barriers = (start, at_half, resume)

        def wait(barrier: threading.Barrier) -> None:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:  # a client failed to start: the others go on alone
                pass
        deadline = time.monotonic() + timeout_s

        def run_client(c: int) -> None:
            try:
                # httpx's 5 s default is shorter than a busy server takes to answer a dozen clients' start-up
                # requests at once on two shared cores; the run's own deadline bounds it instead.
                client = Client(url, verbose=False, download_files=workdir.name,
                                httpx_kwargs={"timeout": max(5.0, float(timeout_s))})
            except BaseException:
                for barrier in barriers:
                    barrier.abort()
                raise
            wait(start)  # every client fires at once
            for index, endpoint in enumerate(plan[c]):
                if half and index == half:
                    wait(at_half)
                    wait(resume)
                with counter_lock:
                    pair = next(counter) % PAIRS
                outcome = Outcome(endpoint, pair)
                outcomes[c].append(outcome)
                if time.monotonic() > deadline:
                    outcome.detail = "not sent: the load test ran out of time"
                    continue
                began = time.perf_counter()
                try:
                    job = client.submit(*_args(caller, endpoint, pair), api_name=endpoint)
                    answer = job.result(timeout=max(1.0, deadline - time.monotonic()))
                except Exception as exc:  # classified below: rejected by the queue, an error, or lost
                    outcome.status, outcome.detail = _classify(exc)
                    if type(exc).__name__ in ("TimeoutError", "CancelledError"):
                        outcome.status = "lost"
                else:
                    outcome.status, outcome.answer = "answered", answer
                outcome.seconds = time.perf_counter() - began

        if before_load is not None:
            before_load()
        started = time.perf_counter()
        paused = 0.0
        rss_half = None
        with ThreadPoolExecutor(max_workers=clients) as pool:
            futures = [pool.submit(run_client, c) for c in range(clients)]
            if half:
                wait(at_half)
                pause_started = time.perf_counter()
                if demo is not None:
                    gc.collect()
                rss_half = _rss(server_pid)
                paused = time.perf_counter() - pause_started
                wait(resume)
            for future in futures:
                future.result()
        seconds = time.perf_counter() - started - paused

        if demo is not None:
            gc.collect()
        rss_after = _rss(server_pid)
        flat = [o for per_client in outcomes for o in per_client]
        mismatched: list[str] = []
        for o in flat:
            if o.status == "answered":
                why = caller.mismatch(o.endpoint, o.pair, o.answer)
                if why:
                    mismatched.append(f"{o.endpoint} pair {o.pair}: {why}")
                o.answer = None
        return _report(flat, mismatched, rss_before, rss_half, rss_after, half, seconds, warmup_s, clients, requests_per_client,
                       endpoints, url)
    finally:
        workdir.cleanup()
        if demo is not None:
            with contextlib.redirect_stdout(sys.stderr):  # Gradio prints "Closing server..." on stdout
                demo.close()


def _args(caller: _Caller, endpoint: str, pair: int) -> tuple[Any, ...]:
    """The positional inputs of one request (the same ones ``_Caller.send`` uses)."""
    from gradio_client import handle_file

    if endpoint == "/generate":
        prompt, seed = caller.inputs.generate[pair]
        return (prompt, "", caller.model, caller.size, caller.size, caller.steps, None, "default", seed, 1)
    image, reference, _psnr, _ssim = caller.inputs.metrics[pair]
    return (handle_file(image), handle_file(reference), ["psnr", "ssim"], False)


def _report(flat: list[Outcome], mismatched: list[str], rss_before: int | None, rss_half: int | None,
            rss_after: int | None, half: int, seconds: float, warmup_s: float, clients: int, per_client: int, endpoints: tuple[str, ...],
            url: str) -> dict[str, Any]:
    def count(status: str, endpoint: str | None = None) -> int:
        return sum(o.status == status and (endpoint is None or o.endpoint == endpoint) for o in flat)

    def examples(status: str) -> list[str]:
        return sorted({o.detail for o in flat if o.status == status})[:5]

    latencies = sorted(o.seconds for o in flat if o.status == "answered")
    pct = (lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 4)) if latencies else (
        lambda q: None)
    return {
        "url": url, "clients": clients, "requests_per_client": per_client, "endpoints": list(endpoints),
        "sent": len(flat), "answered": count("answered"), "rejected": count("rejected"), "errors": count("error"),
        "lost": count("lost"), "mismatched": len(mismatched),
        "per_endpoint": {e: {"sent": sum(o.endpoint == e for o in flat), "answered": count("answered", e),
                             "rejected": count("rejected", e), "errors": count("error", e), "lost": count("lost", e)}
                         for e in endpoints},
        "rss_before": rss_before, "rss_half": rss_half, "rss_after": rss_after,
        # Growth over the second half of the requests, after concurrency's one-time growth.
        "rss_growth": (rss_after - rss_half) if rss_half is not None and rss_after is not None else None,
        "rss_growth_requests": len(flat) - clients * half,
        "seconds": round(seconds, 3), "warmup_s": round(warmup_s, 3),
        "requests_per_s": round(len(flat) / seconds, 3) if seconds > 0 else None,
        "latency_s": {"p50": pct(0.5), "p90": pct(0.9), "max": latencies[-1] if latencies else None},
        "rejected_messages": examples("rejected"), "error_messages": examples("error"),
        "lost_messages": examples("lost"), "mismatch_messages": mismatched[:5],
    }


def bench_load(url: str | None = None, clients: int = 16, requests_per_client: int = 13, model: str | None = None,
               endpoints: Sequence[str] = ENDPOINTS, server_pid: int | None = None,
               timeout_s: float = 900.0) -> dict[str, Any]:
    """The long form for ``python -m genimg bench --load``: ~200 requests (16 × 13) by default.

    ``url``: a running dashboard on loopback; None builds the dashboard over this process's pool
    and serves it on a free loopback port for the run. ``model``: for ``/generate``; None picks
    the catalog's embedded text-to-image model whose weights are here, else the default model if
    it can load here. Returns :func:`run_load`'s figures plus ``model``.
    Raises GenimgError when no model can run here (name one that can).
    """
    from genimg.models.pool import get_pool

    pool = get_pool()
    if model is None and "/generate" in endpoints:
        model = _pick_model(pool)
    if url is None:
        from genimg.ui.app import build_app

        target: Any = build_app(pool)
    else:
        target = url
    result = run_load(target, clients=clients, requests_per_client=requests_per_client, endpoints=endpoints,
                      model=model, server_pid=server_pid, timeout_s=timeout_s)
    return {"model": model, **result}


def _pick_model(pool: Any) -> str:
    from genimg.models import backends
    from genimg.models.catalog import default_model

    def runnable(spec: Any) -> bool:
        if "text-to-image" not in spec.tasks or not pool.availability(spec.id)[0]:
            return False
        is_present = getattr(backends.get(spec.backend), "is_present", None)
        return is_present is None or bool(is_present(spec))

    specs = list(pool.catalog.values())
    for spec in [s for s in specs if s.backend == "embedded"] + [pool.spec(default_model(pool.catalog) or specs[0].id)]:
        if runnable(spec):
            return spec.id
    raise GenimgError("no text-to-image model can run here for the load test: pass --model with one that can "
                      "(python -m genimg models lists them)")


__all__ = ["run_load", "bench_load", "ENDPOINTS"]
