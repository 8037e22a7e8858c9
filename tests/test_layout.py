"""The rules of the house (docs/architecture.md), checked on the source so they cannot rot:
rooms of a readable size, TensorFlow in one package, pure math, a docstring on every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "reviewer"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_TOP_LEVEL = 15
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
TENSORFLOW = ("tensorflow", "keras")


def _name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (lazy imports inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_package_has_at_most_fifteen_top_level_entries():
    entries = [p.name for p in PACKAGE.iterdir() if p.name != "__pycache__"]
    assert len(entries) <= MAX_TOP_LEVEL, sorted(entries)


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_modules_and_functions_stay_small(path):
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_every_module_says_what_it_owns(path):
    assert ast.get_docstring(ast.parse(path.read_text())), f"{_name(path)} has no docstring"


def test_only_the_mc_package_imports_tensorflow():
    importers = [
        _name(path)
        for path in MODULES
        if any(name.split(".")[0] in TENSORFLOW for name in _imports(path))
    ]
    assert importers and all(name.startswith("reviewer.ml.mc.") for name in importers), importers


def test_the_math_is_pure():
    """ml/ (outside mc/) imports numpy and its own modules only: no database, web or files."""
    for path in (PACKAGE / "ml").glob("*.py"):
        own = {n for n in _imports(path) if n.startswith("reviewer.")}
        assert all(n.startswith("reviewer.ml") for n in own), (path.name, own)
        others = {n.split(".")[0] for n in _imports(path)} - {"reviewer", "numpy", "math"}
        assert others <= {"__future__", "dataclasses"}, (path.name, others)


def test_the_core_imports_no_room_above_it():
    """core/ is the floor every room stands on: it imports nothing of the rooms."""
    for path in (PACKAGE / "core").glob("*.py"):
        own = {n for n in _imports(path) if n.startswith("reviewer.")}
        assert all(n.startswith("reviewer.core") for n in own), (path.name, own)


# docs/architecture.md's table: which rooms each room may import (its own always).
ALLOWED = {
    "core": set(),
    "ml": set(),
    "ingest": {"core"},
    "review": {"core", "ml"},
    "scoring": {"core", "ml", "review", "training"},
    "export": {"core", "ml", "review"},
    "training": {"core", "ml"},
    "dashboard": {"core", "ml", "review"},
    "web": {"core", "ml", "ingest", "review", "dashboard"},
}


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_rooms_import_only_the_rooms_below_them(room):
    paths = [PACKAGE / f"{room}.py"] if (PACKAGE / f"{room}.py").exists() else []
    paths += sorted((PACKAGE / room).rglob("*.py")) if (PACKAGE / room).is_dir() else []
    assert paths
    reached = {
        name.split(".")[1]
        for path in paths
        for name in _imports(path)
        if name.startswith("reviewer.") and name.split(".")[1] != room
    }
    assert reached <= ALLOWED[room], reached - ALLOWED[room]


def test_only_the_rescoring_driver_and_its_benchmark_import_ray():
    importers = {_name(p) for p in MODULES if any(n.split(".")[0] == "ray" for n in _imports(p))}
    assert importers == {
        "reviewer.scoring.on_ray",
        "reviewer.scoring.rescoring",
        "reviewer.bench.ray_scoring",
    }, importers


def test_the_web_never_reaches_tensorflow_or_the_worker():
    for path in (PACKAGE / "web").rglob("*.py"):
        assert not {
            n for n in _imports(path) if n.startswith(("reviewer.ml.mc", "reviewer.scoring"))
        }
