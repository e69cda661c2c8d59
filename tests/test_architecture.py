"""Architecture checks: the import structure of ``genimg``, measured from source.

Nothing here imports genimg: every module under ``genimg/`` is parsed with ``ast``
and every ``import`` / ``from ... import`` is counted, wherever it sits (module
level, inside functions, under ``if TYPE_CHECKING:``, inside try/except).
Relative imports are resolved; ``importlib.import_module("genimg.x")`` and
``__import__("genimg.x")`` with a string literal count as imports of what they name.

Graph rules:

* nodes are modules, packages included (``genimg.metrics`` is ``genimg/metrics/__init__.py``);
* ``from genimg.a import b`` is an edge to ``genimg.a.b`` when that is a module, else to ``genimg.a``;
* a package ``__init__`` has edges to what it imports, so a re-export through an
  ``__init__`` does not hide a dependency (the path through it shows up transitively);
* a "folder" is each top-level subpackage (nested ones roll up into it) and each
  top-level module (``genimg/bench.py`` is ``bench``; ``genimg/__init__.py`` is ``__init__``).

Run ``python tests/test_architecture.py`` for a readable report.

These tests hold the architecture in place (docs/architecture.md): a new folder must be
placed in ``LAYERS``, and an import that points up, closes a cycle or a module that grows past
600 lines fails the suite.
"""

from __future__ import annotations

import ast
import functools
import sys
from collections import defaultdict, deque
from pathlib import Path
from typing import NamedTuple

# Layer of every folder: a folder may import only folders of the same or a lower layer.
# A folder that is missing here fails test_layers_point_down until it is placed.
LAYERS: dict[str, int] = {
    # entry point
    "__main__": 9,
    # front ends: the command line, the benchmarks (they drive the dashboard like a visitor), the dashboard
    "cli": 8,
    "bench": 7,
    "ui": 6,
    # scale-out: the Ray Serve deployments run the tasks; the CLI puts the dashboard in front of them
    "serve": 6,
    # use cases: one per tab / command
    "tasks": 5,
    # domain: evaluations and their reports, training; the methods a user ticks
    "evaluation": 4,
    "training": 4,
    # the arena: battles, votes, Bradley–Terry ratings, shared previews (kept in genimg.storage)
    "arena": 4,
    "style": 3,
    "restore": 3,
    "metrics": 3,
    # model catalog, pool and loaders
    "models": 2,
    # runtimes: the project's own networks and pipelines; the scene grammar and its evaluator
    "embedded": 1,
    "scenes": 1,
    "vqa": 1,  # visual question answering over the scene grammar (imports scenes; no model)
    "emoji": 1,  # the emoji world: vocabulary, grammar, evaluator (no model)
    "domains": 1,
    # foundations: no genimg dependencies above them
    "__init__": 0,
    "config": 0,
    "errors": 0,
    "examples": 0,
    "hardware": 0,
    "imageio": 0,
    "methods": 0,
    "outputs": 0,
    "params": 0,
    "pnginfo": 0,
    "grid": 0,
    "quiet": 0,
    "resources": 0,
    "runner": 0,
    "schedulers": 0,
    # the database: engines, tables, migrations (generic: the arena today, the index of training runs next)
    "storage": 0,
}

MAX_LINES = 600

# String constants naming genimg modules outside import statements (tables such as
# {"embedded": "genimg.models.embedded_backend"} fed to importlib.import_module(variable))
# are real run-time dependencies, but the definition does not count them.
# Flip to True to count them as edges everywhere.
COUNT_STRING_REFERENCES = True

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "genimg"
PACKAGE_DIR = ROOT / PACKAGE


class Edge(NamedTuple):
    """One import: ``source`` module imports ``target`` module at ``path:line``."""

    source: str
    target: str
    path: str
    line: int
    kind: str  # "import", "from", "import_module", "string"

    def where(self) -> str:
        return f"{self.path}:{self.line}"


# ---------------------------------------------------------------------------- modules


@functools.lru_cache(maxsize=None)
def modules() -> dict[str, Path]:
    """Every module under genimg/ by dotted name (a package is its ``__init__.py``)."""
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if "__pycache__" in parts:
            continue
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def is_package(name: str) -> bool:
    """Whether module ``name`` is a package (an ``__init__.py``)."""
    return modules()[name].name == "__init__.py"


def rel_path(name: str) -> str:
    """The file of module ``name`` relative to the repository root."""
    return modules()[name].relative_to(ROOT).as_posix()


def folder_of(name: str) -> str:
    """The folder of a module: its top-level subpackage or top-level module name."""
    parts = name.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def _existing(name: str) -> str | None:
    """The longest prefix of dotted ``name`` that is a genimg module, or None."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules():
            return candidate
        parts.pop()
    return None


def _resolve_relative(source: str, level: int, module: str | None) -> str:
    package = source if is_package(source) else source.rpartition(".")[0]
    base = package.split(".")
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _is_dynamic_import(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module" and isinstance(func.value, ast.Name) and func.value.id == "importlib"
    if isinstance(func, ast.Name):
        return func.id in ("import_module", "__import__")
    return False


def _in_package(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _module_edges(source: str) -> list[Edge]:
    path = modules()[source]
    where = rel_path(source)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    edges: list[Edge] = []
    strings_in_calls: set[int] = set()

    def add(target_name: str, line: int, kind: str) -> None:
        if not _in_package(target_name):
            return
        target = _existing(target_name)
        if target is not None and target != source:
            edges.append(Edge(source, target, where, line, kind))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno, "import")
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_relative(source, node.level, node.module) if node.level else (node.module or "")
            if not _in_package(base):
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in modules() else base, node.lineno, "from")
        elif isinstance(node, ast.Call) and _is_dynamic_import(node) and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                strings_in_calls.add(id(arg))
                add(arg.value, node.lineno, "import_module")

    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in strings_in_calls):
            name = node.value.partition(":")[0]
            # Plain module names or "module:function"; packages are skipped (logger names, labels).
            if name in modules() and name != source and not is_package(name):
                edges.append(Edge(source, name, where, node.lineno, "string"))
    return edges


@functools.lru_cache(maxsize=None)
def _all_edges() -> tuple[Edge, ...]:
    out: dict[tuple[str, str, int], Edge] = {}
    for name in modules():
        for e in _module_edges(name):  # one edge per statement and target (`from m import a, b` is one)
            out.setdefault((e.source, e.target, e.line), e)
    return tuple(sorted(out.values(), key=lambda e: (e.source, e.line, e.target)))


def import_edges(include_strings: bool | None = None) -> list[Edge]:
    """Every import edge between genimg modules, one per import statement and target.

    ``include_strings`` adds string constants naming genimg modules (default: COUNT_STRING_REFERENCES).
    """
    if include_strings is None:
        include_strings = COUNT_STRING_REFERENCES
    return [e for e in _all_edges() if include_strings or e.kind != "string"]


def string_references() -> list[Edge]:
    """String constants naming genimg modules outside imports (not counted unless COUNT_STRING_REFERENCES)."""
    return [e for e in _all_edges() if e.kind == "string"]


# ---------------------------------------------------------------------------- graphs


def _graph(edges: list[Edge], key) -> dict[str, dict[str, list[Edge]]]:
    """node -> neighbour -> the edges that make that arc (self arcs dropped)."""
    graph: dict[str, dict[str, list[Edge]]] = defaultdict(lambda: defaultdict(list))
    for e in edges:
        a, b = key(e.source), key(e.target)
        if a != b:
            graph[a][b].append(e)
    return graph


def _sccs(nodes: set[str], graph: dict[str, dict[str, list[Edge]]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, {}))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found, key=lambda c: (-len(c), c))


def shortest_cycle(start: str, members: list[str], graph: dict[str, dict[str, list[Edge]]]) -> list[str]:
    """The shortest cycle start -> ... -> start inside ``members`` (nodes, start repeated at the end)."""
    allowed = set(members)
    previous: dict[str, str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        node = queue.popleft()
        for child in sorted(graph.get(node, {})):
            if child not in allowed:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return list(reversed(path)) + [start]
            if child not in seen:
                seen.add(child)
                previous[child] = node
                queue.append(child)
    return []


def _is_own_ancestor_edge(e: Edge) -> bool:
    """An edge from a module to a package that contains it (genimg.a.b -> genimg.a)."""
    return e.source.startswith(e.target + ".")


def module_graph(include_strings: bool | None = None) -> dict[str, dict[str, list[Edge]]]:
    """The module graph: module -> imported module -> edges."""
    return _graph(import_edges(include_strings), key=lambda name: name)


def folder_graph(include_strings: bool | None = None) -> dict[str, dict[str, list[Edge]]]:
    """The folder graph: folder -> imported folder -> the module edges behind that arc."""
    return _graph(import_edges(include_strings), key=folder_of)


def module_cycles(include_strings: bool | None = None) -> list[list[str]]:
    """Module import cycles: strongly connected components with more than one module."""
    return _sccs(set(modules()), module_graph(include_strings))


def folder_cycles(include_strings: bool | None = None) -> list[list[str]]:
    """Folder import cycles: strongly connected components with more than one folder."""
    return _sccs({folder_of(m) for m in modules()}, folder_graph(include_strings))


def line_count(name: str) -> int:
    """Lines in module ``name``'s file."""
    return len(modules()[name].read_text(encoding="utf-8").splitlines())


def long_modules(limit: int = MAX_LINES) -> list[tuple[str, int]]:
    """(path, lines) of every module over ``limit`` lines, longest first."""
    sizes = [(rel_path(m), line_count(m)) for m in modules()]
    return sorted([s for s in sizes if s[1] > limit], key=lambda s: (-s[1], s[0]))


def unplaced_folders() -> list[str]:
    """Folders that LAYERS does not place."""
    return sorted({folder_of(m) for m in modules()} - set(LAYERS))


def layer_violations(include_strings: bool | None = None) -> list[Edge]:
    """Edges from a folder to a folder of a higher layer (both placed in LAYERS)."""
    return [e for e in import_edges(include_strings)
            if folder_of(e.source) in LAYERS and folder_of(e.target) in LAYERS
            and LAYERS[folder_of(e.source)] < LAYERS[folder_of(e.target)]]


# ---------------------------------------------------------------------------- descriptions


def describe_edge(e: Edge) -> str:
    """``genimg/x.py:12 imports genimg.y``."""
    how = {"import_module": " (importlib.import_module)", "string": " (string reference)"}.get(e.kind, "")
    return f"{e.where()} imports {e.target}{how}"


def describe_module_cycle(members: list[str], graph) -> list[str]:
    """One concrete cycle through the component, each step with the import that makes it."""
    cycle = shortest_cycle(members[0], members, graph)
    return [f"{describe_edge(graph[a][b][0])}" for a, b in zip(cycle, cycle[1:])]


def describe_layer_violation(e: Edge) -> str:
    a, b = folder_of(e.source), folder_of(e.target)
    return f"{describe_edge(e)} ({a} layer {LAYERS[a]} -> {b} layer {LAYERS[b]})"


def module_cycles_text(include_strings: bool | None = None) -> list[str]:
    """Each module cycle: its members, then one concrete cycle, import by import."""
    graph = module_graph(include_strings)
    lines = []
    for i, members in enumerate(module_cycles(include_strings), 1):
        lines.append(f"  [{i}] {len(members)} modules: {', '.join(members)}; e.g.")
        lines.extend(f"      {step}" for step in describe_module_cycle(members, graph))
    return lines


def folder_cycles_text(include_strings: bool | None = None, per_arc: int = 1) -> list[str]:
    """Each folder cycle: its members, one example cycle, every folder arc inside it with its imports."""
    graph = folder_graph(include_strings)
    lines = []
    for i, members in enumerate(folder_cycles(include_strings), 1):
        lines.append(f"  [{i}] {len(members)} folders: {', '.join(members)}")
        lines.append(f"      e.g. {' -> '.join(shortest_cycle(members[0], members, graph))}; its arcs:")
        for a in members:
            for b in sorted(set(graph.get(a, {})) & set(members)):
                arc = graph[a][b]
                lines.append(f"      {a} -> {b} ({len(arc)} imports): {describe_edge(arc[0])}")
                lines.extend(f"          {describe_edge(e)}" for e in arc[1:per_arc])
                if len(arc) > max(per_arc, 1):
                    lines.append(f"          ... and {len(arc) - max(per_arc, 1)} more")
    return lines


def layer_violations_text(include_strings: bool | None = None) -> list[str]:
    """Unplaced folders, then every import from a lower layer to a higher one."""
    unplaced = unplaced_folders()
    lines = [f"  folders not in LAYERS (place each in tests/test_architecture.py): {', '.join(unplaced)}"]
    return (lines if unplaced else []) + [f"  {describe_layer_violation(e)}" for e in layer_violations(include_strings)]


def long_modules_text(limit: int = MAX_LINES) -> list[str]:
    """Each module over ``limit`` lines with its length."""
    return [f"  {path}: {n} lines" for path, n in long_modules(limit)]


def report(include_strings: bool | None = None) -> str:
    """The whole measurement as text."""
    edges = import_edges(include_strings)
    arcs = sum(len(v) for v in module_graph(include_strings).values())
    lines = [f"modules: {len(modules())}   import edges: {len(edges)} "
             f"(distinct module arcs: {arcs}; string references to modules: {len(string_references())}, "
             f"{'counted as imports' if (COUNT_STRING_REFERENCES if include_strings is None else include_strings) else 'not counted'})",
             ""]

    lines.append(f"module cycles (SCCs > 1 module): {len(module_cycles(include_strings))}")
    lines.extend(module_cycles_text(include_strings))
    ancestor = [e for e in edges if _is_own_ancestor_edge(e)]
    without = _sccs(set(modules()), _graph([e for e in edges if not _is_own_ancestor_edge(e)], lambda n: n))
    lines.append(f"  edges from a module to a package __init__ that contains it: {len(ancestor)}"
                 f"; module cycles without them: {len(without)}")
    for target in sorted({e.target for e in ancestor}):
        lines.append(f"      to {target}: " + ", ".join(e.where() for e in ancestor if e.target == target))

    lines += ["", f"folder cycles (SCCs > 1 folder): {len(folder_cycles(include_strings))}"]
    lines.extend(folder_cycles_text(include_strings, per_arc=3))

    lines += ["", f"layer violations (lower layer imports higher): {len(layer_violations(include_strings))}"]
    lines.extend(layer_violations_text(include_strings))

    lines += ["", "string references to genimg modules (import edges when COUNT_STRING_REFERENCES or --strings):"]
    for e in string_references():
        a, b = folder_of(e.source), folder_of(e.target)
        up = a in LAYERS and b in LAYERS and LAYERS[a] < LAYERS[b]
        lines.append(f"  {describe_edge(e)}" + (f"   <- points up ({a} {LAYERS[a]} -> {b} {LAYERS[b]})" if up else ""))

    lines += ["", f"modules over {MAX_LINES} lines: {len(long_modules())}"]
    lines.extend(long_modules_text())
    return "\n".join(lines)


# ---------------------------------------------------------------------------- tests


def test_no_module_import_cycles():
    text = module_cycles_text()
    assert not text, "module import cycles:\n" + "\n".join(text)


def test_no_folder_import_cycles():
    text = folder_cycles_text()
    assert not text, "folder import cycles:\n" + "\n".join(text)


def test_no_module_over_600_lines():
    text = long_modules_text(MAX_LINES)
    assert not text, f"modules over {MAX_LINES} lines:\n" + "\n".join(text)


def test_layers_point_down():
    text = layer_violations_text()
    assert not text, "imports from a lower layer to a higher one:\n" + "\n".join(text)


if __name__ == "__main__":
    print(report(True if "--strings" in sys.argv[1:] else None))
