"""The dashboard's side of a deployment: a :class:`~genimg.models.routes.Route` over a Serve handle.

``call`` streams the replica's items (genimg.serve.replica): progress goes to the caller's
callback as it comes, the result is returned, an error is raised again here in the replica's
words. A replica that dies mid-request (its process killed, its node lost) is retried once --
Serve sends the retry to another replica, or to the one Ray starts in its place -- and if that
fails too the user gets one clear error; the dashboard keeps serving either way.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import ray.exceptions
from ray import serve

from genimg.errors import GenimgError, ModelUnavailableError
from genimg.models.pool import ModelOutOfMemoryError

log = logging.getLogger("genimg.serve")

# The replica's process or node went away, or Serve could not reach it in time.
REPLICA_LOST = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError,
                ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError)
USER_ERRORS = {cls.__name__: cls for cls in (GenimgError, ModelUnavailableError, ModelOutOfMemoryError)}


class ReplicaError(RuntimeError):
    """An internal error inside a replica (a bug, not the user's doing), with the replica's words."""


def rebuild_error(kind: str, message: str) -> Exception:
    """The exception a replica reported: its user-error class (GenimgError when unknown here), or ReplicaError."""
    if kind == "internal":
        return ReplicaError(message)
    return USER_ERRORS.get(kind, GenimgError)(message)


class RayRoute:
    """Requests for ``model_id`` go to its Serve deployment (see module docstring)."""

    def __init__(self, model_id: str, app_name: str, own_device: bool, retries: int = 1):
        self.model_id = model_id
        self.app_name = app_name
        self.own_device = own_device
        self.retries = retries
        self._handle = serve.get_app_handle(app_name)

    def call(self, task: str, kwargs: dict[str, Any], progress: Callable[[int, int], None] | None = None) -> Any:
        """Run ``task`` in a replica (see genimg.models.routes.Route.call)."""
        for attempt in range(self.retries + 1):
            try:
                return self._call_once(task, kwargs, progress)
            except REPLICA_LOST as exc:
                detail = " ".join(str(exc).split())[:160]
                if attempt < self.retries:
                    log.warning("%s: a replica was lost during %s (%s); retrying once", self.model_id, task, detail)
                    continue
                raise ModelUnavailableError(
                    f"model {self.model_id!r}: its Ray Serve replica stopped while running this request "
                    f"(Ray restarts it): try again in a moment ({type(exc).__name__})") from exc
        raise AssertionError("unreachable")

    def _call_once(self, task: str, kwargs: dict[str, Any], progress: Callable[[int, int], None] | None) -> Any:
        stream = self._handle.options(method_name=task, stream=True).remote(**kwargs)
        for item in stream:
            if item[0] == "progress":
                if progress is not None:
                    progress(item[1], item[2])
            elif item[0] == "result":
                return item[1]
            elif item[0] == "error":
                raise rebuild_error(item[1], item[2])
        raise ReplicaError(f"the replica of {self.model_id!r} ended {task} without a result")

    def whoami(self) -> dict[str, Any]:
        """Which replica answers now (its id, node, pid, device): for logs and tests."""
        return self._handle.options(method_name="whoami").remote().result()
