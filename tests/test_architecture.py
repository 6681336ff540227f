"""The layer rule of docs/architecture.md, checked on every module's imports.

Every import (module level or inside a function; `if TYPE_CHECKING:` blocks aside) is an edge
from the importing module to the module it names. The suite fails on any cycle between modules
and on any edge that points from a lower layer up to a higher one. Layers, top to bottom, are
listed once, here; a module belongs to the longest prefix that names it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("flows", "infra", "jobs", "tokenizers_registry", "schemas")

LAYERS = [  # top to bottom: a module may import its own layer and the layers below it
    ("entry points", ("flows", "infra")),
    ("jobs", ("jobs",)),  # one module per Spark job (jobs/<job>.py), plus preflight and default_tokenizers
    ("reports", ("jobs.reports",)),
    ("analyses", ("jobs.analysis",)),
    ("formats", ("tokenizers_registry",)),
    ("corpus", ("jobs.corpus",)),
    ("store", ("jobs.store", "tokenizers_registry.store")),
    ("runtime", ("jobs.runtime",)),
    ("schemas", ("schemas",)),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            found[module_name(path)] = path
    return found


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules that `path` imports, anywhere in its body."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = {id(n) for node in ast.walk(tree) if _type_checking(node) for n in ast.walk(node)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:  # `from pkg import module` names the module itself
                sub = f"{node.module}.{a.name}"
                if sub in known:
                    out.add(sub)
                elif node.module in known:
                    out.add(node.module)
    out.discard(module_name(path))
    return out


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    assert best is not None, f"{module} is in no layer: add its package to LAYERS"
    return best


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imported(p, known) for m, p in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_imports_inside_functions(tmp_path):
    """The parser would miss a cycle hidden in a function body if it read module level only."""
    code = "import os\n\ndef f():\n    from jobs.store import layout\n    import schemas.errors\n"
    p = ROOT / "jobs" / "_probe_for_test.py"
    try:
        p.write_text(code)
        assert imported(p, modules()) == {"jobs.store.layout", "schemas.errors"}
    finally:
        p.unlink()
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles(graph):
    assert cycles(graph) == []


def test_no_upward_imports(graph):
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
              for m, targets in sorted(graph.items()) for t in sorted(targets) if layer_of(t) < layer_of(m)]
    assert upward == []


def test_every_package_says_what_lives_there():
    """Each package opens with a docstring (what lives there, what it may import)."""
    missing = [str(p.relative_to(ROOT)) for m, p in modules().items() if p.name == "__init__.py"
               and len(ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) or "") < 80]
    assert missing == []
