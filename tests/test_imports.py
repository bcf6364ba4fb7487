"""Every module of the package imports (catches syntax errors in code no other test reaches)."""

import importlib
import pkgutil

import pytest

import lossbench

MODULES = [m.name for m in pkgutil.walk_packages(lossbench.__path__, "lossbench.")]


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    importlib.import_module(name)


def _imports_of(name: str) -> set[str]:
    """The lossbench modules ``name`` imports anywhere in its source (at the top or inside a function; not in an
    ``if TYPE_CHECKING:`` block, which never runs)."""
    import ast

    spec = importlib.util.find_spec(name)
    tree = ast.parse(open(spec.origin).read())
    pkg = name if spec.submodule_search_locations else name.rpartition(".")[0]
    typing_only = {id(n) for b in ast.walk(tree) if isinstance(b, ast.If) and "TYPE_CHECKING" in ast.unparse(b.test)
                   for n in ast.walk(b)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}  # "from pkg import module"
    known = set(MODULES) | {"lossbench"}
    return {m for m in out if m in known and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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


def test_no_module_imports_itself_through_others():
    """No import cycles between lossbench's modules, counting imports inside functions too (a package's
    ``__init__`` re-exporting its submodules is the one kind left out: the package is the submodules' parent)."""
    graph = {m: {d for d in _imports_of(m) if not m.startswith(d + ".")} for m in MODULES}
    graph = {m: {d for d in deps if not (d.startswith(m + ".") and importlib.util.find_spec(m).submodule_search_locations)}
             for m, deps in graph.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
