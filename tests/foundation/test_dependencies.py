"""The dependency rules of the layout (docs/architecture.md), checked on the source.

``runtime -> compiler -> systolic``, ``runtime -> contracts``, ``runtime -> bitstreams``: nothing
below ``runtime`` imports it, ``systolic`` imports neither ``compiler`` nor ``runtime``, and the
modules of ``runtime`` import each other without cycles. Imports inside functions count (a lazy
import that dodges a cycle is still a cycle); imports under ``if TYPE_CHECKING:`` do not run and
do not count, nor do a package's re-exports of its own submodules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("compiler", "systolic", "contracts", "bitstreams", "runtime")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["morphware", *parts])


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[str]:
    """Every module named by an import that runs (``from X import y`` yields X and X.y)."""
    out: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append(node.module)
            out.extend(f"{node.module}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for part in PARTS for p in (ROOT / part).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        named = _imports(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        # a package re-exporting its own submodules (``__init__`` -> ``pkg.sub``) is no cycle
        graph[name] = {m for m in named if m in modules and m != name
                       and not (path.name == "__init__.py" and m.startswith(name + "."))}
    return graph


GRAPH = _graph()


@pytest.mark.parametrize(("part", "forbidden"), [
    ("compiler", ("runtime",)),
    ("systolic", ("compiler", "runtime")),
    ("contracts", ("runtime", "compiler", "systolic")),
    ("bitstreams", ("runtime",)),
])
def test_lower_parts_never_import_upwards(part: str, forbidden: tuple[str, ...]) -> None:
    bad = sorted(f"{mod} -> {dep}" for mod, deps in GRAPH.items()
                 if mod.startswith(f"morphware.{part}") for dep in deps
                 if any(dep.startswith(f"morphware.{f}") for f in forbidden))
    assert not bad, "imports against the dependency direction:\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycle_inside_runtime() -> None:
    runtime = {m: {d for d in deps if d.startswith("morphware.runtime")}
               for m, deps in GRAPH.items() if m.startswith("morphware.runtime")}
    cycles = _cycles(runtime)
    assert not cycles, "import cycles in runtime/:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
