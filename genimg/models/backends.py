"""Backend registry: how each kind of catalog entry is checked, loaded and varied.

A backend is an object with ``availability(spec) -> (ok, reason)``, ``load(spec, placement) ->
model`` and ``make_variant(model, kind, spec) -> model`` (optionally ``is_present(spec)``: the
weights are on this machine). Each backend module registers itself, last line,
``register("<name>")(sys.modules[__name__])`` — keyed by the catalog's ``backend`` value;
registering a name twice is an error. The pool imports
every backend module (:mod:`genimg.models.pool`); they import their frameworks lazily, inside
those functions, so that stays cheap.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from genimg.errors import GenimgError


class Backend(Protocol):
    def availability(self, spec: Any) -> tuple[bool, str]: ...
    def load(self, spec: Any, placement: Any) -> Any: ...
    def make_variant(self, model: Any, kind: str, spec: Any) -> Any: ...


_BACKENDS: dict[str, Backend] = {}


def register(name: str) -> Callable[[Any], Any]:
    """Decorator: register a backend (a module or object with the functions above) for ``backend = name``.

    Raises ValueError when ``name`` is already registered.
    """

    def decorate(backend: Any) -> Any:
        if name in _BACKENDS:
            raise ValueError(f"backend {name!r} is registered twice ({_BACKENDS[name]!r} and {backend!r})")
        _BACKENDS[name] = backend
        return backend

    return decorate


def get(name: str) -> Backend:
    """The backend registered for ``name``; GenimgError when there is none."""
    try:
        return _BACKENDS[name]
    except KeyError:
        raise GenimgError(f"backend {name!r} is not available in this build of genimg "
                          f"(known: {', '.join(sorted(_BACKENDS))})") from None


def names() -> list[str]:
    """Every registered backend name."""
    return sorted(_BACKENDS)
