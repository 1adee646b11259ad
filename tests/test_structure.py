"""The package's shape: no two clipkit modules import each other, not even at call time.

A cycle hidden in a function-level import works until the day both modules
are imported in the other order; the shared piece belongs in a module below
both (see clipkit.clipfacts, clipkit.withdrawal, clipkit.initialize).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "clipkit"


def _imports(path: Path, known: set[str], package: str) -> set[str]:
    """The clipkit modules ``path`` imports anywhere in it, except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for n in ast.walk(node)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only or not isinstance(node, ast.ImportFrom):
            continue
        if node.level:  # relative: resolve against the importing module's package
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        names = [target] if node.module else []
        names += [f"{target}.{a.name}" for a in node.names]
        out |= {n for n in names if n in known}
    return out


def import_graph(pkg: Path = PKG) -> dict[str, set[str]]:
    """module name -> the clipkit modules it imports (package ``__init__`` files count as their package)."""
    mods = {}
    for p in sorted(pkg.rglob("*.py")):
        rel = p.relative_to(pkg.parent).with_suffix("")
        parts = list(rel.parts[:-1]) if rel.name == "__init__" else list(rel.parts)
        mods[".".join(parts)] = p
    graph = {}
    for name, p in mods.items():
        package = name if p.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = _imports(p, set(mods), package) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_two_clipkit_modules_import_each_other():
    graph = import_graph()
    assert len(graph) > 40 and graph["clipkit.export"]  # the scan sees the package (it can fail)
    assert cycles(graph) == [], "import cycles: move the shared piece into a module below both"


@pytest.mark.parametrize("sources, expected", [
    ({"a": "from . import b\n", "b": "def f():\n    from . import a\n"}, [["clipkit.a", "clipkit.b"]]),
    ({"a": "from .b import x\n", "b": "from .c import y\n", "c": "from clipkit import a\n"},
     [["clipkit.a", "clipkit.b", "clipkit.c"]]),
    ({"a": "from . import b\n", "b": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\n"},
     []),
    ({"a": "from . import b\n", "b": "import json\n"}, []),
])
def test_the_cycle_finder_sees_call_time_imports_and_ignores_type_hints(tmp_path, sources, expected):
    pkg = tmp_path / "clipkit"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, text in sources.items():
        (pkg / f"{name}.py").write_text(text)
    assert cycles(import_graph(pkg)) == expected
