"""The side-by-side runner: several models or methods on one input, one cell each.

Compare (models), Style and Restore (methods) and Evaluate (models x prompts x seeds) all
run their cells here, so they share one set of rules:

- **progress** in cells done and the running cell's own steps (:class:`Progress`), so a
  4-step model next to a 20-step one reads "2/3 genimg-fewstep: step 3/4", never a
  made-up common step count;
- **a cell's failure is a row, not the end of the run**: a user-fixable
  :class:`~genimg.errors.GenimgError` keeps its words; anything else is logged with its
  traceback and reported as "<cell> failed: <type>: <message>";
- **nothing could run** is one GenimgError naming every cell's reason;
- cells run **in sequence** by default: on one device that is what makes timings fair. An
  ``executor`` (threads, a Ray fan-out, ...) runs them in parallel, e.g. one per GPU.

Validation of the shared request happens before the runner: what is wrong with the whole
request is never a per-cell error.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

from genimg.errors import GenimgError, ModelUnavailableError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
StepFn = Callable[[int, int], None]


@dataclass
class Progress:
    """Where a side-by-side run is: cell ``index`` (0-based) of ``cells``, and that cell's own steps."""

    index: int
    cells: int
    label: str
    step: int = 0
    steps: int = 0
    unit: str = "step"

    @property
    def done(self) -> float:
        """Cells done, counting the running one's fraction (0 .. cells)."""
        within = self.step / self.steps if self.steps else 0.0
        return min(float(self.cells), self.index + min(1.0, within))

    def describe(self) -> str:
        """E.g. "2/3 genimg-fewstep: step 3/4" (or "3/3 done")."""
        if self.index >= self.cells:
            return f"{self.cells}/{self.cells} done"
        text = f"{self.index + 1}/{self.cells} {self.label}"
        return text + (f": {self.unit} {self.step}/{self.steps}" if self.steps else "")


ProgressFn = Callable[[Progress], None]


@dataclass
class Cell(Generic[R]):
    """One column of a side-by-side run: its value, or the reason it has none."""

    key: str
    label: str
    value: R | None = None
    error: str | None = None
    seconds: float = 0.0   # wall time of the cell as the runner saw it
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None


def run_cells(items: Sequence[T], run: Callable[[T, StepFn], R], *, key: Callable[[T], str] = str,
              label: Callable[[T], str] | None = None, what: str = "method", unit: str = "step",
              progress: ProgressFn | None = None, executor: Executor | None = None) -> list[Cell[R]]:
    """Run ``run(item, step)`` for every item; return one Cell per item, in the items' order.

    ``run`` reports its own progress with ``step(done, total)``. ``key`` / ``label`` name a
    cell (ids and display names); ``what`` names the kind in the "nothing could run" error
    ("model", "method", ...). With ``executor``, cells run concurrently on it.
    Raises GenimgError when no cell produced a value.
    """
    label = label or key
    total = len(items)
    lock = threading.Lock()

    def report(index: int, step: int = 0, steps: int = 0) -> None:
        if progress is not None:
            with lock:
                progress(Progress(index, total, label(items[index]), step, steps, unit))

    def one(index: int) -> Cell[R]:
        item = items[index]
        cell: Cell[R] = Cell(key=key(item), label=label(item))
        report(index)
        started = time.perf_counter()
        try:
            cell.value = run(item, lambda done, steps, _i=index: report(_i, done, steps))
        except GenimgError as exc:
            cell.error, cell.exception = str(exc), exc
        except Exception as exc:  # one cell's fault must not take the other columns down
            log.exception("%s %s failed", what, cell.key)
            cell.error, cell.exception = f"{cell.label} failed: {type(exc).__name__}: {exc}", exc
        cell.seconds = time.perf_counter() - started
        return cell

    if executor is None:
        cells = [one(i) for i in range(total)]
    else:
        cells = list(executor.map(one, range(total)))
    if progress is not None:
        progress(Progress(total, total, "done", unit=unit))
    if cells and not any(c.ok for c in cells):
        # Only missing weights everywhere stays a ModelUnavailableError (callers map it to "weights missing").
        kind = (ModelUnavailableError if all(isinstance(c.exception, ModelUnavailableError) for c in cells)
                else GenimgError)
        raise kind(f"no {what} could run: " + "; ".join(f"{c.key}: {c.error}" for c in cells))
    return cells
