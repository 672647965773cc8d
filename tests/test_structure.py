"""The package's shape: layers import downward only, the queue owns its table, the dialect is
the database layer's business, modules stay small, and nothing needs a POSIX-only module."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "batchnb"

# Each subpackage (or top-level module) and its layer: a module may import from its own layer's
# packages only when they are the same package, and from lower layers freely.
LAYERS: dict[str, int] = {
    "errors": 0,
    "config": 1,
    "db": 2,
    "documents": 2,
    "formats": 2,
    "cache": 2,
    "extract": 3,
    "queue": 3,
    "jobs": 4,
    "testing": 4,
    "services": 5,
    "evaluation": 6,
    "__init__": 6,
    "cli": 7,
    "ui": 7,
    "__main__": 8,
}
MAX_LINES = 500

# The imports against the layers, kept explicit: ``Batch.progress_widget()`` and
# ``Batch.review()`` (services) hand back a widget of batchnb.ui, imported inside that method
# only when it is called. The ui modules in turn use the services, so these pairs are also the
# only circles allowed.
LAYER_EXCEPTIONS = {
    ("batchnb.services.batches", "batchnb.ui.progress"),
    ("batchnb.services.batches", "batchnb.ui.results_view"),
}


def _modules() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def _package_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported_packages(tree: ast.AST, importer: str = "") -> Iterator[tuple[str, int]]:
    """(batchnb subpackage, line) of every import of batchnb code in ``tree`` (by the module
    ``importer``, whose :data:`LAYER_EXCEPTIONS` are left out)."""
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "batchnb" and (importer, name) not in LAYER_EXCEPTIONS:
                yield (parts[1] if len(parts) > 1 else "__init__"), node.lineno


def test_every_package_has_a_layer() -> None:
    assert {_package_of(path) for path in _modules()} <= set(LAYERS)


def test_imports_point_down_the_layers() -> None:
    upward = []
    for path in _modules():
        own = _package_of(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for imported, line in _imported_packages(tree, _module_name(path)):
            if imported != own and LAYERS[imported] >= LAYERS[own]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {imported}")
    assert upward == []


def test_services_leave_queue_items_and_dialects_to_the_layers_below() -> None:
    found = []
    for path in sorted((PACKAGE / "services").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.ImportFrom) and any(a.name == "QueueItem" for a in node.names):
                found.append(f"{where} imports QueueItem")
            if isinstance(node, ast.Attribute) and node.attr in ("dialect", "dialect_name"):
                found.append(f"{where} reads .{node.attr}")
            if isinstance(node, ast.Attribute) and node.attr == "is_sqlite":
                found.append(f"{where} reads .is_sqlite")
            if isinstance(node, ast.Name) and node.id == "postgres":
                found.append(f"{where} branches on a postgres flag")
            if isinstance(node, ast.Constant) and node.value == "postgresql":
                found.append(f"{where} names the postgresql dialect")
    assert found == []


def test_modules_stay_small() -> None:
    long = {
        str(path.relative_to(PACKAGE.parent)): lines
        for path in _modules()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_package_imports_without_fcntl() -> None:
    """Windows has no fcntl; CI cannot run Windows, so the import is tried with it blocked."""
    script = (
        "import sys, importlib, pkgutil, warnings\n"
        "sys.modules['fcntl'] = None\n"
        "warnings.simplefilter('ignore')\n"  # filelock warns it falls back to a soft lock
        "import batchnb\n"
        "for module in pkgutil.walk_packages(batchnb.__path__, 'batchnb.'):\n"
        "    if '.migrations' not in module.name:\n"
        "        importlib.import_module(module.name)\n"
        "print('imported')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_two_modules_import_each_other_in_a_circle() -> None:
    """Inside a package too: a circle means two modules each know the other's job."""
    modules = {_module_name(path): path for path in _modules()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                targets.update(t for t in found if t in modules)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name in modules)
        # A package's __init__ re-exports its modules; importing it is not importing them.
        graph[name] = {
            t
            for t in targets
            if t != name and not name.startswith(f"{t}.") and (name, t) not in LAYER_EXCEPTIONS
        }
    circles = []
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                circles.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []
