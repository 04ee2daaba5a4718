"""The engine's modules import one another without a cycle (issue 19, item 7).

The thread pool and its core ownership have one home, :mod:`engine.threads`, which the
backend switch and the compiled kernels both import; before, ``engine.backend`` and
``engine.kernels.numba`` imported each other. Checked on the source: every import
statement of every engine module, lazy imports in functions included.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict:
    modules = {_module_name(p): p for p in (ROOT / "engine").rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module" \
                    and node.args and isinstance(node.args[0], ast.Constant):
                found = [node.args[0].value]
            else:
                continue
            targets |= {t for t in found if t in modules and t != name}
        graph[name] = targets
    return graph


def _cycle(graph: dict) -> list | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_engine_import_graph_has_no_cycle():
    # A package's __init__ is imported by its submodules implicitly, not by a statement;
    # only the statements count, so a package importing its own submodules is no cycle.
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle)


def test_pool_and_core_ownership_have_one_home():
    graph = _graph()
    assert "engine.threads" in graph["engine.backend"]
    assert not {m for m in graph["engine.threads"] if m.startswith(("engine.backend", "engine.kernels"))}
    from engine import backend, threads
    from engine.kernels.numba import _threads, gru, linear

    assert backend.exclusive_cores is threads.exclusive_cores
    assert linear.exclusive_cores is gru.exclusive_cores is threads.exclusive_cores
    assert _threads.parallel_for is threads.parallel_for is linear.parallel_for
