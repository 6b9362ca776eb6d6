"""The rooms of ARCHITECTURE.md import only from rooms below them: the layout shows the flow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "r1eval"

#: Lowest first. A module may import from its own room and from rooms in earlier layers.
LAYERS: list[set[str]] = [
    {"r1eval", "_moved", "errors", "types", "flags", "gc_pause", "percent", "table"},
    {"grading"},
    {"task"},
    {"backends"},
    {"store"},
    {"scoring"},
    {"run"},
    {"claims", "regress"},
    {"reports", "export"},
    {"commands", "cli"},
    {"api"},  # r1eval/__init__.py: the public API gathers from every room (lazily)
]
LAYER = {room: depth for depth, rooms in enumerate(LAYERS) for room in rooms}


def _room(module: str) -> str:
    parts = module.split(".")
    return "r1eval" if len(parts) == 1 else parts[1]


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "r1eval":
            found.append(str(node.module))
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "r1eval"]
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_room_is_in_a_layer() -> None:
    rooms = {_room(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts))
             for p in MODULES}
    assert rooms - {"__init__"} <= set(LAYER), rooms - set(LAYER)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_a_module_imports_nothing_from_a_room_above_its_own(path: Path) -> None:
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    room = "api" if module == "r1eval.__init__" else _room(module)
    upward = [target for target in _imports(path) if LAYER[_room(target)] > LAYER[room]]
    assert upward == [], f"{module} ({room}) imports from rooms above it: {upward}"
