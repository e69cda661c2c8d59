"""``python -m genimg serve [--ray]``: the dashboard, in one process or in front of Ray Serve deployments.

Without ``--ray`` it is ``python app.py``. With ``--ray`` it starts a local Ray instance (or
joins ``--address``), deploys the models of ``--config`` (default: every available embedded
text-to-image model) as Ray Serve deployments, and serves the same dashboard on the usual
address (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT / PORT), its models routed to the deployments.
Ctrl-C or SIGTERM stops the dashboard, then the deployments, then the Ray instance it started.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``serve`` command."""
    p = subparsers.add_parser("serve", help="serve the dashboard (--ray: models as Ray Serve deployments)",
                              description=__doc__.split("\n\n")[1])
    p.add_argument("--ray", action="store_true",
                   help="deploy the models on Ray Serve (needs requirements-ray.txt) and serve the dashboard over them")
    p.add_argument("--address", default=None,
                   help="join this Ray cluster (e.g. auto, or ray://head:10001) instead of starting a local instance")
    p.add_argument("--config", default=None,
                   help="serve config (TOML): models, replicas, CPUs/GPUs, batching (docs/serve.example.toml)")
    p.add_argument("--json", action="store_true",
                   help="print what was deployed as one JSON line on stdout once the dashboard is up")
    p.set_defaults(func=cmd_serve)


def _stop_on_sigterm() -> None:
    # Gradio's launch() ends on KeyboardInterrupt; SIGTERM (docker stop, systemd, a test) takes the same path,
    # so the deployments and the Ray instance are always shut down behind it.
    def handler(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def cmd_serve(args: argparse.Namespace) -> dict[str, Any] | None:
    """Run ``serve``; blocks until stopped. Raises GenimgError for a bad config or an unreachable cluster."""
    from genimg.errors import GenimgError
    from genimg.ui.app import launch

    if not args.ray:
        if args.address or args.config:
            raise GenimgError("--address and --config apply to --ray: add --ray, or drop them")
        _stop_on_sigterm()
        launch()
        return None
    try:
        import ray  # noqa: F401
        from ray import serve  # noqa: F401
    except ImportError:
        raise GenimgError("serve --ray needs Ray Serve: pip install -r requirements-ray.txt") from None
    from genimg.models.pool import get_pool
    from genimg.serve.cluster import deploy, shutdown
    from genimg.serve.config import read_config

    config = read_config(args.config)
    if args.address:
        config.address = args.address
    pool = get_pool()
    _stop_on_sigterm()
    print("genimg serve --ray: starting Ray and deploying the models (a minute or two)...", file=sys.stderr)
    cluster = deploy(config, pool)
    _stop_on_sigterm()  # again: ray.init installs handlers of its own
    try:
        for plan in cluster.plans:
            print(f"  deployed {plan.describe()}", file=sys.stderr)
        print(f"genimg serve --ray: {len(cluster.plans)} deployments ready in {cluster.deploy_seconds:.1f} s "
              f"(Ray at {cluster.address})", file=sys.stderr)
        if args.json:
            print(json.dumps({"command": "serve", **cluster.describe()}), flush=True)
            args.json = False  # printed now, while serving: the one JSON object, not a second one at exit
        launch()
    except KeyboardInterrupt:
        pass
    finally:
        print("genimg serve --ray: stopping the deployments and Ray", file=sys.stderr)
        shutdown(cluster.started_ray, cluster.apps)
    return None
