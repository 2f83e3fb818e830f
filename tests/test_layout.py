"""The repository's layout rules, checked from source (docs/ARCHITECTURE.md, "Layering").

A newcomer finds the architecture in the tree only while the tree keeps it, so the rules are tests rather than
advice: small modules, small rooms under `node/`, no import cycles (function-level and `TYPE_CHECKING` imports
included: a cycle moved into a function still ties the two modules together), and dependencies that point one
way — the pure cores never reach into `node/`, nothing but the command line reaches into `bench/`, nothing
reaches into `tests/`. Scope: every Python file of the project's packages (tests/layout_graph.py: PACKAGES),
tests and benchmarks included.
"""

from __future__ import annotations

import re
from collections import Counter

from tests.layout_graph import (
    PACKAGES,
    ROOT,
    Import,
    imports,
    module_name,
    outside_imports,
    project_files,
    strongly_connected,
)

MAX_MODULE_LINES = 500
MAX_MODULES_PER_ROOM = 15  # Python modules in one folder under node/, not counting __init__.py and __main__.py

# Rooms allowed over the limit for now, each with the reason; an entry whose room fits again fails the test.
CROWDED_ROOMS: dict[str, str] = {}

# Imports that close a cycle on purpose. Each pair is (importer, imported); every such import statement must carry
# a comment with "import cycle:" and the reason, on its line or the line above, so the reason sits where the next
# reader meets the import. An entry that no longer closes a cycle fails the test: delete it.
ALLOWED_CYCLE_IMPORTS: set[tuple[str, str]] = {
    ("node.cli.admin", "node.cli.member"),  # `ehrnet admin` in two modules; admin lists member's commands in place
}

# Which top-level package may import which. The pure cores (consensus, storage, offload) share only the base
# (primitives) and know nothing of each other, the node, the benchmarks or the tests; the node imports benchmarks
# only from its command line (`ehrnet bench` runs them).
MAY_IMPORT: dict[str, set[str]] = {
    "primitives": {"primitives"},
    "consensus": {"consensus", "primitives"},
    "storage": {"storage", "primitives"},
    "offload": {"offload", "primitives"},
    "node": {"node", "consensus", "storage", "offload", "primitives", "bench"},
    "bench": {"bench", "node", "consensus", "storage", "offload", "primitives"},
    "tests": set(PACKAGES),
}
NODE_MODULES_THAT_MAY_IMPORT_BENCH = re.compile(r"node\.cli\.")

# Imports that break MAY_IMPORT today, each with the reason it is still there.
KNOWN_LAYER_BREAKS: dict[tuple[str, str], str] = {}

# The p2p room is the one place that knows libp2p and trio; it knows nothing of what the rest of the node carries.
P2P_MAY_IMPORT = re.compile(r"(node\.p2p(\.|$)|node\.service$|primitives\.|consensus\.(codec|keys|errors)$)")


# The node's rooms by layer (docs/ARCHITECTURE.md §1): a room imports rooms of its own layer or below. The client
# edge imports nothing of the node, so it sits low enough for any room to use it.
ROOM_LAYERS: dict[str, int] = {
    "node": 0,  # the package itself: its version
    "node.service": 0,
    "node.client": 0,
    "node.p2p": 1,
    **dict.fromkeys(["node.ledger", "node.store", "node.views", "node.api", "node.faults"], 2),
    **dict.fromkeys(["node.ehr", "node.edge"], 3),
    **dict.fromkeys(["node.app", "node.runner"], 4),
    **dict.fromkeys(["node.cluster", "node.cli", "node.demo", "node.chaos", "node.light"], 5),
}
# Imports from a room into a higher one, each with the reason it is still there (docs/ARCHITECTURE.md §1 lists them
# as the next cuts to make).
KNOWN_ROOM_CROSSINGS: dict[tuple[str, str], str] = {
    ("node.app", "node.cluster.config"): "the network config file's reader lives with the cluster tooling",
    ("node.runner", "node.cluster.config"): "the network config file's reader lives with the cluster tooling",
    ("node.faults.options", "node.cluster.config"): "the network config file's reader lives with the cluster tooling",
    ("node.ledger.light_server", "node.light.wire"): "the light-client protocol's format lives with the client",
    ("node.ledger.light_server", "node.light.errors"): "the light-client protocol's errors live with the client",
}


def _room(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "node" else parts[0]


def _top(module: str) -> str:
    return module.split(".")[0]


def test_every_top_level_package_is_checked() -> None:
    # A new top-level package outside PACKAGES would escape every rule here.
    found = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert found <= set(PACKAGES), f"top-level packages missing from PACKAGES: {sorted(found - set(PACKAGES))}"
    assert set(MAY_IMPORT) == set(PACKAGES)


def test_no_module_over_the_line_limit() -> None:
    long = {
        str(path.relative_to(ROOT)): count
        for path in project_files()
        if (count := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by concept): {long}"


def test_no_room_under_node_holds_too_many_modules() -> None:
    rooms = Counter(
        str(path.parent.relative_to(ROOT))
        for path in project_files(["node"])
        if path.name not in ("__init__.py", "__main__.py")
    )
    crowded = {room: n for room, n in rooms.items() if n > MAX_MODULES_PER_ROOM and room not in CROWDED_ROOMS}
    assert not crowded, f"rooms with more than {MAX_MODULES_PER_ROOM} modules (cut them by concept): {crowded}"
    fit = sorted(room for room in CROWDED_ROOMS if rooms[room] <= MAX_MODULES_PER_ROOM)
    assert not fit, f"CROWDED_ROOMS entries that fit the limit now (delete them): {fit}"


def test_every_folder_with_python_modules_is_a_package() -> None:
    # A folder without __init__.py is a namespace package: mypy and the import graph would see its modules under
    # another name than the interpreter does.
    missing = sorted(
        str(folder.relative_to(ROOT))
        for folder in {path.parent for path in project_files()}
        if not (folder / "__init__.py").exists()
    )
    assert not missing, f"folders without __init__.py: {missing}"


def test_no_import_cycles() -> None:
    edges = imports()
    allowed = [e for e in edges if (e.source, e.target) in ALLOWED_CYCLE_IMPORTS]
    cycles = strongly_connected(
        (e.source, e.target) for e in edges if (e.source, e.target) not in ALLOWED_CYCLE_IMPORTS
    )
    if cycles:
        lines = []
        for members in cycles:
            inside = [e for e in edges if e.source in members and e.target in members]
            lines.append(" -> ".join(members))
            lines.extend(f"    {e.source} imports {e.target} at {e.where()}{_place(e)}" for e in inside)
        raise AssertionError(
            "import cycles (move what both sides need to a lower module; if a cycle must stay, add the pair to "
            "ALLOWED_CYCLE_IMPORTS and say why in an 'import cycle:' comment at the import):\n" + "\n".join(lines)
        )
    unexplained = [e.where() for e in allowed if "import cycle:" not in e.comment or len(e.comment.split()) < 6]
    assert not unexplained, f"allowed cycle imports without an 'import cycle: <reason>' comment: {unexplained}"


def test_allowed_cycles_are_still_cycles() -> None:
    edges = imports()
    pairs = {(e.source, e.target) for e in edges}
    missing = sorted(p for p in ALLOWED_CYCLE_IMPORTS if p not in pairs)
    assert not missing, f"ALLOWED_CYCLE_IMPORTS names imports that are gone (delete them): {missing}"
    cycles = strongly_connected((e.source, e.target) for e in edges)
    in_cycle = {m for members in cycles for m in members}
    stale = sorted((a, b) for a, b in ALLOWED_CYCLE_IMPORTS if not (a in in_cycle and b in in_cycle))
    assert not stale, f"ALLOWED_CYCLE_IMPORTS entries that close no cycle any more (delete them): {stale}"


def test_packages_import_only_what_their_layer_may() -> None:
    breaks = []
    for e in imports():
        source, target = _top(e.source), _top(e.target)
        if (e.source, e.target) in KNOWN_LAYER_BREAKS:
            continue
        if target not in MAY_IMPORT[source]:
            breaks.append(f"{e.source} imports {e.target} at {e.where()}")
        elif source == "node" and target == "bench" and not NODE_MODULES_THAT_MAY_IMPORT_BENCH.match(e.source):
            breaks.append(f"{e.source} imports {e.target} at {e.where()} (only the command line runs benchmarks)")
    assert not breaks, "imports against the layering (docs/ARCHITECTURE.md, 'Layering'):\n" + "\n".join(breaks)


def test_known_layer_breaks_are_still_there() -> None:
    pairs = {(e.source, e.target) for e in imports()}
    gone = sorted(p for p in KNOWN_LAYER_BREAKS if p not in pairs)
    assert not gone, f"KNOWN_LAYER_BREAKS entries that no longer happen (delete them): {gone}"


def test_rooms_import_only_their_layer_and_below() -> None:
    upward = sorted(
        f"{e.source} imports {e.target} at {e.where()}"
        for e in imports()
        if e.source.startswith("node")
        and e.target.startswith("node")
        and ROOM_LAYERS[_room(e.target)] > ROOM_LAYERS[_room(e.source)]
        and (e.source, e.target) not in KNOWN_ROOM_CROSSINGS
    )
    assert not upward, "imports from a room into a higher layer (docs/ARCHITECTURE.md §1):\n" + "\n".join(upward)
    rooms = {_room(module_name(path)) for path in project_files(["node"])}
    assert rooms <= set(ROOM_LAYERS), f"rooms without a layer in ROOM_LAYERS: {sorted(rooms - set(ROOM_LAYERS))}"
    pairs = {(e.source, e.target) for e in imports()}
    gone = sorted(p for p in KNOWN_ROOM_CROSSINGS if p not in pairs)
    assert not gone, f"KNOWN_ROOM_CROSSINGS entries that no longer happen (delete them): {gone}"


def test_the_p2p_room_knows_nothing_of_the_rest_of_the_node() -> None:
    reaching_out = [
        f"{e.source} imports {e.target} at {e.where()}"
        for e in imports(project_files(["node"]))
        if e.source.startswith("node.p2p") and not P2P_MAY_IMPORT.match(e.target)
    ]
    assert not reaching_out, "node/p2p/ must stay a transport:\n" + "\n".join(reaching_out)


def test_only_the_p2p_room_imports_trio() -> None:
    # py-libp2p runs on trio inside the asyncio loop (docs/ARCHITECTURE.md §3); one room owns that crossing.
    trio_users = sorted(
        module
        for module, names in outside_imports().items()
        if "trio" in names and not module.startswith(("node.p2p.", "tests."))
    )
    assert not trio_users, f"trio imported outside node/p2p/: {trio_users}"


def test_the_graph_sees_function_level_imports() -> None:
    # The walk is what every rule above stands on: an import it missed would be a cycle nobody sees.
    edges = imports([ROOT / "node" / "cli" / "main.py"])
    assert any(e.target == "node.cli.ledger" and not e.at_top for e in edges), "function-level import missed"
    assert module_name(ROOT / "node" / "cli" / "__init__.py") == "node.cli"
    assert strongly_connected([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]) == [["a", "b", "c"]]
    assert strongly_connected([("a", "b"), ("b", "c")]) == []


def _place(e: Import) -> str:
    return "" if e.at_top else " (inside a function or TYPE_CHECKING)"
