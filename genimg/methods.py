"""The method contract: everything a user ticks in a tab is a registered object.

A generator, a restoration method, a style method, a metric, an answerer: each has an
``id`` (used by the CLI and the API), a ``label`` (shown in the UI), a ``task`` (what it
does, e.g. "denoise", "style", "no-reference"), ``availability() -> (ok, reason)`` and
``run(...)`` (its signature is the kind's: see each registry's module). Each kind has one
:class:`Registry`; a method registers itself with its decorator, once::

    RESTORERS = Registry("restoration method")

    @RESTORERS.register
    class Wavelet(Method):
        id, label, task = "wavelet", "Wavelet BayesShrink (scikit-image)", "denoise"
        def run(self, ...): ...

Registering an id twice is an error (InvokeAI's model-loader registry does the same), so
there is no hand-kept if/elif of method names or backends anywhere.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

from genimg.errors import GenimgError


class Method:
    """Base of every registered method. Subclasses set the class attributes and override ``run``."""

    id: str = ""
    label: str = ""
    task: str = ""
    description: str = ""

    def availability(self) -> tuple[bool, str]:
        """(True, "") when it can run on this machine, else (False, why and how to fix it)."""
        return True, ""

    def run(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - every method overrides it
        raise NotImplementedError(f"{type(self).__name__}.run")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r}>"


M = TypeVar("M", bound=Method)


class Registry(Generic[M]):
    """Methods of one kind, by id, in registration order.

    ``what`` names the kind in messages ("restoration method", "metric", ...); ``hint`` follows an
    unknown name's error.
    """

    def __init__(self, what: str, aliases: dict[str, str] | None = None, hint: str = ""):
        self.what = what
        self.hint = hint  # said after an unknown name, e.g. where to see which can run here
        self._methods: dict[str, M] = {}
        self._aliases = dict(aliases or {})

    def register(self, method: Any) -> Any:
        """Register a Method instance, or a Method class (instantiated without arguments); returns it.

        Usable as a class decorator. Raises ValueError when the id is empty or already taken.
        """
        instance = method() if isinstance(method, type) else method
        if not instance.id:
            raise ValueError(f"a {self.what} needs an id: {instance!r}")
        if instance.id in self._methods:
            raise ValueError(f"{self.what} {instance.id!r} is registered twice "
                             f"({self._methods[instance.id]!r} and {instance!r})")
        self._methods[instance.id] = instance
        return method

    def alias(self, name: str, method_id: str) -> None:
        """Accept ``name`` as another spelling of ``method_id`` on the CLI and the API."""
        self._aliases[name] = method_id

    def canonical(self, name: str) -> str | None:
        """The id ``name`` means (ids and aliases, case-insensitive), or None."""
        key = str(name).strip().lower()
        key = self._aliases.get(key, key)
        return key if key in self._methods else None

    def get(self, name: str) -> M:
        """The method called ``name``; GenimgError naming the known ids when there is none."""
        key = self.canonical(name)
        if key is None:
            raise GenimgError(f"unknown {self.what} {str(name).strip()!r}: use one of {', '.join(self._methods)}"
                              + (f" ({self.hint})" if self.hint else ""))
        return self._methods[key]

    def choose(self, names: Iterable[Any] | str | None, *, most: int | None = None,
               default: Iterable[str] | None = None) -> list[M]:
        """Validate a user's choice (a list, or comma-separated text) and return the methods in its order.

        Empty → ``default`` when given, else an error. Raises GenimgError for none, more than
        ``most``, a repeat or an unknown name.
        """
        if isinstance(names, str):
            names = names.split(",")
        picked = [str(n).strip() for n in (names or []) if n is not None and str(n).strip()]
        if not picked:
            if default is not None:
                return [self.get(n) for n in default]
            raise GenimgError(f"no {self.what} chosen: pick one or more of {', '.join(self._methods)}")
        if most is not None and len(picked) > most:
            raise GenimgError(f"at most {most} {self.what}s per request, got {len(picked)}")
        methods = [self.get(n) for n in picked]
        if len({m.id for m in methods}) != len(methods):
            raise GenimgError(f"the same {self.what} was chosen twice: pick each once")
        return methods

    def where(self, predicate: Callable[[M], bool]) -> list[M]:
        """The methods for which ``predicate`` holds, in registration order."""
        return [m for m in self._methods.values() if predicate(m)]

    def ids(self) -> list[str]:
        return list(self._methods)

    def __getitem__(self, method_id: str) -> M:
        """The method registered under exactly ``method_id`` (KeyError otherwise)."""
        return self._methods[method_id]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.canonical(name) is not None

    def __iter__(self) -> Iterator[M]:
        return iter(list(self._methods.values()))

    def __len__(self) -> int:
        return len(self._methods)

    def table(self) -> list[dict[str, Any]]:
        """Every method with its availability: for --help texts, `models`, and the UI's choices."""
        rows = []
        for m in self._methods.values():
            ok, reason = m.availability()
            rows.append({"id": m.id, "label": m.label, "task": m.task, "available": ok, "reason": reason})
        return rows
