"""The project's import graph, read from source with `ast` (nothing is imported, so nothing runs).

The layout tests (tests/test_layout.py) need every import a module can perform, not only the ones at its top:
an import inside a function or under `if TYPE_CHECKING:` is a dependency all the same, and a cycle hidden there is
still a cycle in the design (it only moves the failure from import time to call time). So the walk visits the
whole tree of each module and records, for each import, where it sits and the comment on its line.

An edge goes to the most specific project module an import names: `from node.ledger import service` is an edge
to `node.ledger.service`, `from node.ledger.service import LedgerService` an edge to the same module, and
`import node` an edge to `node` (its `__init__`). Importing a submodule also runs its packages' `__init__`
modules, but those are kept free of imports of their own children, so the parent edge is left out to keep the
graph to the dependencies someone wrote.
"""

from __future__ import annotations

import ast
import functools
import io
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The project's top-level packages: every Python file the repository owns lives in one of them.
PACKAGES = ("primitives", "consensus", "storage", "offload", "node", "bench", "tests")


@dataclass(frozen=True)
class Import:
    """One import statement's edge from `source` to `target`, both dotted project module names."""

    source: str
    target: str
    path: Path
    line: int
    at_top: bool  # False inside a function, class body or `if TYPE_CHECKING:` block
    comment: str  # the `#` comments on the statement's lines and in the comment block just above it

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def project_files(packages: Iterable[str] = PACKAGES) -> Iterator[Path]:
    """Every Python file of the given top-level packages, in a stable order."""
    for package in packages:
        yield from sorted((ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    """`node/ledger/service.py` -> `node.ledger.service`; a package's `__init__.py` -> the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _comments(source: str) -> dict[int, str]:
    """The comment on each line that has one, by line number."""
    found: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found[token.start[0]] = token.string.lstrip("#").strip()
    return found


def _top_level_nodes(tree: ast.Module) -> set[int]:
    """ids of import statements that run when the module is imported (not under TYPE_CHECKING)."""
    top: set[int] = set()
    for statement in tree.body:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            top.add(id(statement))
        elif isinstance(statement, ast.Try):
            for block in (statement.body, statement.orelse, statement.finalbody):
                top.update(id(s) for s in block if isinstance(s, ast.Import | ast.ImportFrom))
    return top


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module name an `ImportFrom` reads from, relative imports included."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _most_specific(name: str, known: set[str]) -> str | None:
    """The longest prefix of dotted `name` that is a project module, if any."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def imports(files: Iterable[Path] | None = None) -> list[Import]:
    """Every import of a project module by a project module (of `files`, default all), with its place and comment."""
    if files is None:
        return list(_every_import())
    return _imports(tuple(files))


@functools.cache
def _every_import() -> tuple[Import, ...]:
    # Parsing every module takes seconds on a busy machine; the tests read the same tree, so they share one walk.
    return tuple(_imports(tuple(project_files())))


def _imports(paths: tuple[Path, ...]) -> list[Import]:
    everything = list(project_files())
    known = {module_name(p) for p in everything}
    found: list[Import] = []
    for path in paths:
        try:
            source = path.read_text()
        except FileNotFoundError:  # moved away between the listing and the read (a rename in progress)
            continue
        tree = ast.parse(source, filename=str(path))
        comments = _comments(source)
        lines = source.splitlines()
        top = _top_level_nodes(tree)
        module = module_name(path)
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [t for a in node.names if (t := _most_specific(a.name, known))]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node)
                for alias in node.names:
                    target = _most_specific(f"{base}.{alias.name}", known) or _most_specific(base, known)
                    if target:
                        targets.append(target)
            else:
                continue
            end = node.end_lineno or node.lineno
            first = node.lineno
            while first > 1 and lines[first - 2].lstrip().startswith("#"):  # the comment block just above
                first -= 1
            comment = " ".join(comments[n] for n in range(first, end + 1) if n in comments)
            for target in dict.fromkeys(targets):
                if target != module:
                    found.append(Import(module, target, path, node.lineno, id(node) in top, comment))
    return found


def strongly_connected(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module: each is a set of modules in a cycle."""
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        # Iterative depth-first search: a recursive one would hit Python's recursion limit on a long chain.
        work: list[tuple[str, Iterator[str]]] = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(graph[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return sorted(components)


@functools.cache
def outside_imports() -> dict[str, frozenset[str]]:
    """Each project module's imports of packages outside the project, by top-level name (`trio`, `aiohttp`)."""
    known = {module_name(p).split(".")[0] for p in project_files()}
    found: dict[str, frozenset[str]] = {}
    for path in project_files():
        try:
            tree = ast.parse(path.read_text(), filename=str(path))
        except FileNotFoundError:  # moved away between the listing and the read
            continue
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
        found[module_name(path)] = frozenset(names - known)
    return found
