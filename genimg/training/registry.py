"""Which trainer ``python -m genimg train <model>`` runs: a registry keyed by model name.

Each trainer module registers its command-line entry point once::

    @register_trainer("gan")
    def main(argv: list[str] | None = None) -> dict: ...

A ``main`` parses the trainer's own options, trains (and exports) and returns a JSON-able
summary; a user error raises GenimgError, which the CLI turns into exit code 2 and one
``error:`` line. Registering a name twice is an error, so there is no hand-kept table of
model names anywhere else.
"""

from __future__ import annotations

from typing import Any, Callable

from genimg.errors import GenimgError

TrainerMain = Callable[[list[str] | None], dict[str, Any]]


class TrainerRegistry:
    """Trainer entry points by model name."""

    def __init__(self) -> None:
        self._mains: dict[str, TrainerMain] = {}

    def register(self, name: str) -> Callable[[TrainerMain], TrainerMain]:
        """A decorator registering ``main`` under ``name``; raises ValueError if the name is empty or taken."""
        if not name:
            raise ValueError("a trainer needs a model name")

        def decorate(main: TrainerMain) -> TrainerMain:
            if name in self._mains:
                raise ValueError(f"trainer {name!r} is registered twice ({self._mains[name]!r} and {main!r})")
            self._mains[name] = main
            return main

        return decorate

    def get(self, name: str) -> TrainerMain:
        """The entry point of model ``name``; GenimgError naming the known models when there is none."""
        if name not in self._mains:
            raise GenimgError(f"no trainer for {name!r}: use one of {', '.join(self.names())}")
        return self._mains[name]

    def names(self) -> list[str]:
        """The registered model names, sorted."""
        return sorted(self._mains)

    def __getitem__(self, name: str) -> TrainerMain:
        return self._mains[name]

    def __contains__(self, name: object) -> bool:
        return name in self._mains


TRAINERS = TrainerRegistry()
register_trainer = TRAINERS.register
