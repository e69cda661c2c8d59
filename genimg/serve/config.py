"""What ``serve --ray`` deploys: the serve config file, merged with the catalog and the cluster.

A config file (TOML; ``docs/serve.example.toml``) names the models to deploy and, per model,
its replicas (a fixed number, or autoscaling bounds), CPUs/GPUs per replica, torch threads,
the most requests a replica takes at once and the micro-batching window. Whatever it leaves
out comes from the model's ``[model.serve]`` table in the catalog, then from what the cluster
has. Pure functions over plain data: tested without Ray.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genimg.errors import GenimgError
from genimg.models.catalog import ModelSpec

RAY_KEYS = {"address", "num_cpus", "num_gpus", "serve_http_port"}
DEPLOYMENT_KEYS = {"model", "num_replicas", "num_cpus", "num_gpus", "threads", "max_ongoing_requests",
                   "max_batch_size", "batch_wait_timeout_s", "autoscaling"}
AUTOSCALING_KEYS = {"min_replicas", "max_replicas", "target_ongoing_requests"}
MAX_REPLICAS = 64


@dataclass
class DeploymentPlan:
    """One model's deployment, every field decided."""

    model: str
    num_replicas: int = 1
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    threads: int = 1                   # torch intra-op threads in each replica
    max_ongoing_requests: int = 8
    max_batch_size: int = 8            # requests gathered by @serve.batch into one pipeline call
    batch_wait_timeout_s: float = 0.0
    autoscaling: dict[str, int] | None = None   # min_replicas, max_replicas, target_ongoing_requests

    @property
    def app_name(self) -> str:
        """The Serve application (and deployment) name of this model."""
        return f"genimg-{self.model}" if not self.model.startswith("genimg-") else self.model

    @property
    def own_device(self) -> bool:
        """True when each replica holds at least one whole GPU, which Ray never shares."""
        return self.num_gpus >= 1

    @property
    def least_replicas(self) -> int:
        return self.autoscaling["min_replicas"] if self.autoscaling else self.num_replicas

    def describe(self) -> str:
        """One line for the startup log, e.g. "genimg-diffusion: 1 replica x 0.5 CPU, 1 thread"."""
        count = (f"{self.autoscaling['min_replicas']}-{self.autoscaling['max_replicas']} replicas (autoscaling)"
                 if self.autoscaling else f"{self.num_replicas} replica{'s' * (self.num_replicas != 1)}")
        gpus = f" + {self.num_gpus:g} GPU" if self.num_gpus else ""
        return (f"{self.model}: {count} x {self.num_cpus:g} CPU{gpus}, {self.threads} torch thread"
                f"{'s' * (self.threads != 1)}, batches of up to {self.max_batch_size}")


@dataclass
class ServeConfig:
    """The whole serve config: where Ray is, and what to deploy (empty: the defaults)."""

    address: str | None = None        # None: start a local instance; "auto" or ray://host:port to join
    num_cpus: int | None = None       # a local instance's CPUs (None: all of this machine's)
    num_gpus: int | None = None
    serve_http_port: int | None = None   # Serve's own HTTP proxy; None: off (handles only)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    source: str = "defaults"


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise GenimgError(f"serve config {where}: unknown key{'s' * (len(unknown) > 1)} {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(allowed))})")


def read_config(path: Path | str | None) -> ServeConfig:
    """Parse a serve config file; None gives the defaults (every available embedded model).

    Raises GenimgError for a missing or unreadable file, invalid TOML or unknown keys.
    """
    if path is None:
        return ServeConfig()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GenimgError(f"serve config {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GenimgError(f"serve config {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise GenimgError(f"serve config {path} is not valid TOML: {exc}") from None
    _check_keys(data, {"ray", "deployment"}, "top level")
    ray_table = data.get("ray", {})
    _check_keys(ray_table, RAY_KEYS, "[ray]")
    deployments = data.get("deployment", [])
    if not isinstance(deployments, list):
        raise GenimgError("serve config: write each model as a [[deployment]] table")
    for i, entry in enumerate(deployments):
        _check_keys(entry, DEPLOYMENT_KEYS, f"[[deployment]] #{i + 1}")
        if "model" not in entry:
            raise GenimgError(f"serve config [[deployment]] #{i + 1} names no model (model = \"<catalog id>\")")
        _check_keys(entry.get("autoscaling", {}), AUTOSCALING_KEYS, f"[[deployment]] {entry['model']} autoscaling")
    port = ray_table.get("serve_http_port") or None
    return ServeConfig(address=ray_table.get("address") or None, num_cpus=ray_table.get("num_cpus") or None,
                       num_gpus=ray_table.get("num_gpus"), serve_http_port=port, deployments=list(deployments),
                       source=str(path))


def _number(entry: dict[str, Any], key: str, default: Any, low: float, high: float, kind: type = float) -> Any:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and int(value) != value):
        raise GenimgError(f"serve config: {entry.get('model', '?')} {key} must be a{'' if kind is float else ' whole'} "
                          f"number, got {value!r}")
    if not low <= value <= high:
        raise GenimgError(f"serve config: {entry.get('model', '?')} {key} must be between {low:g} and {high:g}, "
                          f"got {value!r}")
    return kind(value)


def plan_deployments(config: ServeConfig, catalog: dict[str, ModelSpec], available: dict[str, tuple[bool, str]],
                     cluster_cpus: float, cluster_gpus: float) -> list[DeploymentPlan]:
    """Decide every deployment: the config's entries (or every available embedded text-to-image
    model), each field from the config, else the catalog's ``[model.serve]``, else the cluster.

    Default CPUs per replica share the cluster's CPUs among the replicas (at most 1 each), so the
    defaults always fit; GPUs per replica are the catalog's ``num_gpus`` when the cluster has GPUs,
    else 0. ``available`` maps model id -> (can load here, why not). Raises GenimgError naming what
    is wrong: an unknown model, one that does not do text-to-image, missing weights, a bad number,
    or deployments that ask for more than the cluster has.
    """
    entries = config.deployments or [
        {"model": spec.id} for spec in catalog.values()
        if spec.backend == "embedded" and "text-to-image" in spec.tasks and available.get(spec.id, (False, ""))[0]]
    if not entries:
        raise GenimgError("nothing to deploy: no embedded text-to-image model is available here "
                          "(python -m genimg models) and the serve config names none")
    seen: set[str] = set()
    for entry in entries:
        model = entry["model"]
        if model not in catalog:
            raise GenimgError(f"serve config: unknown model {model!r}: choose one of {', '.join(catalog)}")
        if "text-to-image" not in catalog[model].tasks:
            raise GenimgError(f"serve config: model {model!r} does not do text-to-image; serve --ray deploys "
                              "text-to-image models (the other tabs run in the dashboard process)")
        ok, reason = available.get(model, (False, "not checked"))
        if not ok:
            raise GenimgError(f"serve config: model {model!r} cannot be loaded here: {reason}")
        if model in seen:
            raise GenimgError(f"serve config: model {model!r} is deployed twice: give it one [[deployment]]")
        seen.add(model)
    counts = [_number(e, "num_replicas", 1, 1, MAX_REPLICAS, int) if "autoscaling" not in e
              else _number(e["autoscaling"], "min_replicas", 1, 0, MAX_REPLICAS, int) or 1 for e in entries]
    share = math.floor(100 * min(1.0, max(cluster_cpus, 0.01) / sum(counts))) / 100 or 0.01
    plans = []
    for entry in entries:
        spec = catalog[entry["model"]]
        defaults = {**spec.serve, **entry}
        gpus_default = float(spec.serve.get("num_gpus", 0)) if cluster_gpus > 0 else 0.0
        num_cpus = _number(defaults, "num_cpus", share, 0.01, 1024)
        plan = DeploymentPlan(
            model=spec.id,
            num_replicas=_number(defaults, "num_replicas", 1, 1, MAX_REPLICAS, int),
            num_cpus=num_cpus,
            num_gpus=_number({**defaults, "num_gpus": entry.get("num_gpus", gpus_default)}, "num_gpus", 0, 0, 64),
            threads=_number(defaults, "threads", max(1, round(num_cpus)), 1, 1024, int),
            max_ongoing_requests=_number(defaults, "max_ongoing_requests", 8, 1, 1024, int),
            max_batch_size=_number(defaults, "max_batch_size", 8, 1, 64, int),
            batch_wait_timeout_s=_number(defaults, "batch_wait_timeout_s", 0.0, 0, 10),
        )
        if "autoscaling" in entry:
            auto = entry["autoscaling"]
            low = _number(auto, "min_replicas", 1, 0, MAX_REPLICAS, int)
            high = _number(auto, "max_replicas", max(low, 1), max(low, 1), MAX_REPLICAS, int)
            target = _number(auto, "target_ongoing_requests", 2, 1, 1024, int)
            plan.autoscaling = {"min_replicas": low, "max_replicas": high, "target_ongoing_requests": target}
        plans.append(plan)
    want_cpus = sum(p.num_cpus * p.least_replicas for p in plans)
    want_gpus = sum(p.num_gpus * p.least_replicas for p in plans)
    if want_cpus > cluster_cpus + 1e-6:
        raise GenimgError(f"the deployments ask for {want_cpus:g} CPUs but the Ray cluster has {cluster_cpus:g}: "
                          "lower num_cpus or num_replicas in the serve config")
    if want_gpus > cluster_gpus + 1e-6:
        raise GenimgError(f"the deployments ask for {want_gpus:g} GPUs but the Ray cluster has {cluster_gpus:g}: "
                          "lower num_gpus or num_replicas in the serve config")
    return plans
