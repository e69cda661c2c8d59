"""Start or join Ray, deploy the planned models, route the dashboard's pool to them, shut down.

The dashboard runs in the ``serve`` process itself, not as a Serve ingress deployment: Ray's
Gradio integration builds the app without starting Gradio's queue (every event hangs under
Gradio 6, see docs/scale-out.md), and one dashboard process per cluster is what Ray's docs
advise anyway (several Gradio replicas need sticky sessions). It reaches the model replicas
through Serve deployment handles, so Serve's HTTP proxy is not needed and stays off unless the
config asks for it (``[ray] serve_http_port``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genimg.errors import GenimgError
from genimg.models.pool import ModelPool
from genimg.serve.config import DeploymentPlan, ServeConfig, plan_deployments

log = logging.getLogger("genimg.serve")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Settings a replica must share with the dashboard (catalog, limits, device policy, offline hub).
SHARED_ENV_PREFIXES = ("GENIMG_", "HF_", "TRANSFORMERS_", "DIFFUSERS_")


@dataclass
class Cluster:
    """A Ray instance with genimg's deployments, and whether this process started it."""

    plans: list[DeploymentPlan]
    started_ray: bool
    address: str
    resources: dict[str, float]
    deploy_seconds: float = 0.0
    apps: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """What was deployed where, for the startup log and ``--json``."""
        return {"ray_address": self.address, "started_ray": self.started_ray,
                "cluster": {"cpus": self.resources.get("CPU", 0), "gpus": self.resources.get("GPU", 0)},
                "deploy_s": round(self.deploy_seconds, 2),
                "deployments": [{**plan.__dict__, "app": plan.app_name} for plan in self.plans]}


def replica_env(plan: DeploymentPlan) -> dict[str, str]:
    """The environment of a plan's replicas: genimg's settings, importability, its torch threads."""
    env = {k: v for k, v in os.environ.items() if k.startswith(SHARED_ENV_PREFIXES)}
    env["GENIMG_TORCH_THREADS"] = str(plan.threads)
    env["OMP_NUM_THREADS"] = str(plan.threads)
    # Replicas import genimg from this checkout (on a multi-node cluster, the same path on every node).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return env


def connect(config: ServeConfig) -> tuple[bool, str]:
    """Join the configured cluster, or start a local Ray instance; (started here, address)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports leave the machine
    # Ray's handler prints a C++ stack dump on SIGTERM; a clean stop (docker stop, Ctrl-C) is not a crash.
    os.environ.setdefault("RAY_install_failure_signal_handler", "0")
    import ray

    if ray.is_initialized():
        return False, ray.get_runtime_context().gcs_address
    options: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                                   configure_logging=False)
    try:
        if config.address:
            ray.init(address=config.address, **options)
            return False, config.address
        ray.init(num_cpus=config.num_cpus, num_gpus=config.num_gpus, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = config.address or "a local instance"
        raise GenimgError(f"cannot start or join Ray ({where}): {' '.join(str(exc).split())[:300]}") from None
    return True, ray.get_runtime_context().gcs_address


def deploy(config: ServeConfig, pool: ModelPool) -> Cluster:
    """Connect to Ray, deploy every planned model, and route ``pool``'s models to their deployments.

    Returns the Cluster. Raises GenimgError for a bad config, a cluster too small for it, or a
    deployment whose replicas fail to start (with the replica's reason).
    """
    started, address = connect(config)
    import ray
    from ray import serve

    from genimg.serve.replica import ModelReplica
    from genimg.serve.route import RayRoute

    try:
        resources = ray.cluster_resources()
        available = {model_id: pool.availability(model_id) for model_id in pool.catalog}
        plans = plan_deployments(config, pool.catalog, available, resources.get("CPU", 0.0), resources.get("GPU", 0.0))
        http = ({"host": "127.0.0.1", "port": config.serve_http_port} if config.serve_http_port else None)
        serve.start(proxy_location="HeadOnly" if http else "Disabled", http_options=http)
        targets = []
        for plan in plans:
            options: dict[str, Any] = dict(
                name=plan.app_name, max_ongoing_requests=plan.max_ongoing_requests,
                ray_actor_options={"num_cpus": plan.num_cpus, "num_gpus": plan.num_gpus,
                                   "runtime_env": {"env_vars": replica_env(plan)}},
                health_check_period_s=5, graceful_shutdown_timeout_s=5)
            if plan.autoscaling:
                options["autoscaling_config"] = dict(plan.autoscaling)
            else:
                options["num_replicas"] = plan.num_replicas
            app = serve.deployment(ModelReplica).options(**options).bind(
                plan.model, plan.max_batch_size, plan.batch_wait_timeout_s)
            targets.append(serve.RunTarget(target=app, name=plan.app_name, route_prefix=None))
            log.info("deploying %s", plan.describe())
        started_at = time.perf_counter()
        try:
            serve.run_many(targets)
        except Exception as exc:  # a replica's constructor failed (weights, memory...): say which and why
            raise GenimgError(f"a deployment failed to start: {' '.join(str(exc).split())[:400]}") from None
        cluster = Cluster(plans=plans, started_ray=started, address=address, resources=dict(resources),
                          deploy_seconds=time.perf_counter() - started_at, apps=[p.app_name for p in plans])
        for plan in plans:
            pool.set_route(plan.model, RayRoute(plan.model, plan.app_name, plan.own_device))
        return cluster
    except BaseException:
        shutdown(started)
        raise


def undeploy(cluster: Cluster, pool: ModelPool | None = None) -> None:
    """Delete genimg's applications (and routes); Ray keeps running."""
    from ray import serve

    for plan in cluster.plans:
        if pool is not None:
            pool.set_route(plan.model, None)
        try:
            serve.delete(plan.app_name)
        except Exception:  # already gone with the cluster
            log.warning("could not delete %s", plan.app_name, exc_info=True)


def shutdown(started_ray: bool, apps: list[str] | tuple[str, ...] = ()) -> None:
    """Stop what this process set up: Serve and the local Ray instance when it started them (no
    Ray process is left behind), else just its own applications on the joined cluster."""
    import ray
    from ray import serve

    if not ray.is_initialized():
        return
    # Ray prints the controller's last words ("Task ServeController... failed") on stdout while it
    # stops; stdout is for --json, so they go to stderr with the rest of the log.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            if started_ray:
                serve.shutdown()
            else:
                for app in apps:
                    serve.delete(app)
        finally:
            ray.shutdown()
