"""``python -m genimg bench --ray``: what Ray Serve buys and costs here, as ratios in one run.

On a local Ray instance (this machine's CPUs), against the real dashboard served on loopback:

- **ingress overhead**: one ``/generate`` over HTTP through the dashboard in front of a Ray Serve
  deployment vs the same call on the single-process app (interleaved trials, medians);
- **replica scaling**: ``/generate`` throughput from concurrent clients with 1 vs 2 replicas of
  the model (1 CPU and 1 torch thread each, micro-batching off so replicas are what is measured),
  and with 1 replica batching (Serve's ``@serve.batch``) for comparison.

docs/scale-out.md turns these into the expected scaling on N GPUs.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from typing import Any

from genimg.bench.overhead import call_generate_http
from genimg.bench.timing import interleaved, ratio

BATCH_WAIT_S = 0.05  # the second batching variant: Serve waits this long for company before a call


def _serve_dashboard(pool: Any) -> tuple[Any, str]:
    from genimg.ui.app import build_app

    demo = build_app(pool)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}"


def _close(demo: Any) -> None:
    with contextlib.redirect_stdout(sys.stderr):  # Gradio prints "Closing server..." on stdout
        demo.close()


def _throughput(url: str, data: list[Any], clients: int, requests: int) -> dict[str, Any]:
    """``clients`` threads, each its own HTTP client, share ``requests`` /generate calls; requests per second."""
    import httpx

    left = list(range(requests))
    lock = threading.Lock()
    replicas: set[str] = set()
    shared: list[int] = []

    def client() -> None:
        with httpx.Client(base_url=url, timeout=300) as http:
            while True:
                with lock:
                    if not left:
                        return
                    left.pop()
                record = call_generate_http(http, data)
                with lock:
                    replicas.add((record.get("replica") or {}).get("id", "local"))
                    shared.append(record["timings"].get("batch_requests", 1))

    # A random seed per request (-1): identical concurrent outputs would share one Gradio cache file, which
    # Gradio rewrites while another response streams it ("Response content longer than Content-Length").
    data = [*data[:8], -1, *data[9:]]
    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    return {"requests": requests, "clients": clients, "seconds": round(seconds, 3),
            "requests_per_s": round(requests / seconds, 3), "replicas_seen": len(replicas),
            "mean_requests_per_call": round(sum(shared) / len(shared), 2)}


def bench_ray(model_id: str = "genimg-diffusion", clients: int = 4, requests: int = 32, repeats: int = 9) -> dict[str, Any]:
    """Run the Ray Serve bench (see module docstring); returns the figures and the ratios.

    Starts and stops its own local Ray instance. Raises GenimgError when Ray is not installed.
    """
    import httpx

    from genimg.errors import GenimgError
    from genimg.models.pool import ModelPool
    from genimg.serve.cluster import connect, deploy, shutdown, undeploy
    from genimg.serve.config import ServeConfig

    try:
        import ray  # noqa: F401
    except ImportError:
        raise GenimgError("bench --ray needs Ray Serve: pip install -r requirements-ray.txt") from None
    data = ["a small red circle on a blue background", "", model_id, None, None, None, None, "default", 1234, 1]
    report: dict[str, Any] = {"model": model_id, "clients": clients, "requests": requests}

    # The single-process app gets what a replica gets -- one torch thread -- so the ratios measure the
    # ingress and the replicas, not a thread-count difference (on 2 shared cores 1 thread is the faster).
    import torch

    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    single_pool = ModelPool()
    single, single_url = _serve_dashboard(single_pool)
    config = ServeConfig(num_cpus=None)
    started, _ = connect(config)
    try:
        report["ray_cpus"] = ray.cluster_resources().get("CPU", 0)

        def deployed(replicas: int, batch: int, wait_s: float = 0.0) -> tuple[Any, Any, ModelPool, str]:
            pool = ModelPool()
            cluster = deploy(ServeConfig(deployments=[{"model": model_id, "num_replicas": replicas, "num_cpus": 1,
                                                       "threads": 1, "max_batch_size": batch,
                                                       "batch_wait_timeout_s": wait_s}]), pool)
            demo, url = _serve_dashboard(pool)
            return cluster, demo, pool, url

        # 1. Ingress overhead: one request at a time, single-process app vs the Ray-served dashboard.
        cluster, demo, pool, url = deployed(1, 1)
        with httpx.Client(base_url=single_url, timeout=300) as a, httpx.Client(base_url=url, timeout=300) as b:
            timings = interleaved({"single_process": lambda: call_generate_http(a, data),
                                   "ray_serve": lambda: call_generate_http(b, data)}, repeats)
        report["latency"] = {**timings, "ray_over_single": ratio(timings, "ray_serve", "single_process")}
        # 2. Throughput with concurrent clients: the single-process app, then 1 and 2 replicas (no batching),
        #    then 1 replica batching.
        report["throughput"] = {"single_process": _throughput(single_url, data, clients, requests),
                                "ray_1_replica": _throughput(url, data, clients, requests)}
        _close(demo)
        undeploy(cluster, pool)
        cluster, demo, pool, url = deployed(2, 1)
        report["throughput"]["ray_2_replicas"] = _throughput(url, data, clients, requests)
        _close(demo)
        undeploy(cluster, pool)
        for wait_s in (0.0, BATCH_WAIT_S):  # the default window (none), and one that waits for company
            cluster, demo, pool, url = deployed(1, 8, wait_s)
            name = "ray_1_replica_batching" + ("" if wait_s == 0 else f"_wait_{int(wait_s * 1000)}ms")
            report["throughput"][name] = _throughput(url, data, clients, requests)
            _close(demo)
            undeploy(cluster, pool)
    finally:
        _close(single)
        shutdown(started)
        torch.set_num_threads(threads_before)
    rps = {name: row["requests_per_s"] for name, row in report["throughput"].items()}
    report["ratios"] = {
        "ingress_latency_ray_over_single": round(report["latency"]["ray_over_single"], 3),
        "throughput_2_replicas_over_1": round(rps["ray_2_replicas"] / rps["ray_1_replica"], 3),
        "throughput_ray_1_replica_over_single": round(rps["ray_1_replica"] / rps["single_process"], 3),
        "throughput_batching_over_1_replica": round(rps["ray_1_replica_batching"] / rps["ray_1_replica"], 3),
        f"throughput_batching_wait_{int(BATCH_WAIT_S * 1000)}ms_over_1_replica": round(
            rps[f"ray_1_replica_batching_wait_{int(BATCH_WAIT_S * 1000)}ms"] / rps["ray_1_replica"], 3),
    }
    report["note"] = ("each replica 1 logical CPU and 1 torch thread, the single-process app 1 torch thread too "
                      "(and its own micro-batching, on by default); the dashboards and the clients share this "
                      "machine's CPUs with the replicas")
    return report


__all__ = ["bench_ray"]
