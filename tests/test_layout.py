"""The layout of the house, kept by a test: who may import whom, and what each package shows.

Import directions (see DESIGN.md): the SDK imports nothing of the platform; the
bottom floor (`core/` = `inferloop`: settings, logging, signals) imports no
component; components import the store and the bottom floor, never the server or
the top floor (`app/` = `inferloop.app`); the analyzer's statistics import no I/O.
Imports are read from the source (every `import`, also inside functions), so a
lazy import cannot slip through.
"""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIRS: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
"""Import name → folder, e.g. `inferloop.sdk` → `sdk`."""

BOTTOM_FLOOR = "inferloop"
TOP_FLOOR = "inferloop.app"
SERVER = "inferloop.server"
COMPONENTS = ("store", "analyzer", "collector", "alerts", "feedback")
STATISTICS_MODULES = (
    "_calibration",
    "_changepoint",
    "_data_quality",
    "_drift",
    "_embeddings",
    "_performance",
    "_profile",
    "_quality",
    "_samples",
    "_stattests",
)
IO_LIBRARIES = ("sqlalchemy", "httpx", "psycopg", "requests", "urllib", "kafka", "socket")


def _package_of(path: Path) -> str:
    """The import name of the package holding `path`, from pyproject's package-dir."""
    folder = path.parent.relative_to(ROOT).as_posix()
    for name, directory in PACKAGE_DIRS.items():
        if directory == folder:
            return name
    raise AssertionError(f"{folder}/ is not a package listed in pyproject.toml")


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module `path` imports, relative imports resolved."""
    package = _package_of(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _sources(import_name: str) -> list[Path]:
    return sorted((ROOT / PACKAGE_DIRS[import_name]).glob("*.py"))


def _components_present() -> list[str]:
    return [c for c in COMPONENTS if f"inferloop.{c}" in PACKAGE_DIRS]


def _violations(paths: list[Path], forbidden: tuple[str, ...], allowed=()) -> list[str]:
    """`file: module` for each import of a forbidden module (or one inside it)."""
    bad = []
    for path in paths:
        for module in sorted(imports_of(path)):
            hit = any(module == f or module.startswith(f + ".") for f in forbidden)
            spared = any(module == a or module.startswith(a + ".") for a in allowed)
            if hit and not spared:
                bad.append(f"{path.relative_to(ROOT)}: {module}")
    return bad


def test_the_sdk_imports_nothing_of_the_platform() -> None:
    platform = tuple(name for name in PACKAGE_DIRS if name != "inferloop.sdk")
    sdk_files = _sources("inferloop.sdk")
    # `inferloop` itself is the bottom floor: the SDK must not need it either.
    bad = _violations(sdk_files, platform, allowed=("inferloop.sdk",))
    assert not bad, "the SDK must run with the standard library alone:\n" + "\n".join(bad)


def test_the_bottom_floor_imports_no_component() -> None:
    components = tuple(name for name in PACKAGE_DIRS if name != BOTTOM_FLOOR)
    bad = _violations(_sources(BOTTOM_FLOOR), components)
    assert not bad, "settings, logging and signals are imported by all, import none:\n" + "\n".join(
        bad
    )


@pytest.mark.parametrize("component", _components_present())
def test_components_import_neither_the_server_nor_the_top_floor(component: str) -> None:
    bad = _violations(_sources(f"inferloop.{component}"), (SERVER, TOP_FLOOR))
    assert not bad, f"{component} must not depend on the server or the top floor:\n" + "\n".join(
        bad
    )


def test_the_server_does_not_import_the_top_floor() -> None:
    bad = _violations(_sources(SERVER), (TOP_FLOOR,))
    assert not bad, "\n".join(bad)


def test_the_analyzer_statistics_do_no_io() -> None:
    paths = [ROOT / "analyzer" / f"{name}.py" for name in STATISTICS_MODULES]
    missing = [p.name for p in paths if not p.exists()]
    assert not missing, f"statistics modules renamed? update STATISTICS_MODULES: {missing}"
    bad = _violations(paths, IO_LIBRARIES)
    assert not bad, "pure statistics must not read or write anything:\n" + "\n".join(bad)


def _component_folders() -> list[str]:
    """Top-level folders holding a Python package (tests and benchmarks are not shipped)."""
    return sorted(
        p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name not in {"tests", "bench"}
    )


def test_every_component_folder_is_packaged_and_in_the_docker_image() -> None:
    packaged = set(PACKAGE_DIRS.values())
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) \1\s*$", dockerfile, re.MULTILINE))
    for folder in _component_folders():
        assert folder in packaged, f"{folder}/ is missing from pyproject.toml's package-dir"
        assert folder in copied, (
            f"{folder}/ is missing from the Dockerfile (COPY {folder} {folder})"
        )
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert listed == set(PACKAGE_DIRS), "packages and package-dir list different packages"


def _public_names_bound(init: Path) -> set[str]:
    """Names an `__init__.py` binds at module level that are not private."""
    names: set[str] = set()
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_") and n != "annotations"}


def _all_sort_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then functions and modules."""
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    return kind, name


PUBLIC_PACKAGES = [name for name in PACKAGE_DIRS if name.count(".") == 1]


@pytest.mark.parametrize("package", [*PUBLIC_PACKAGES, BOTTOM_FLOOR])
def test_every_package_exports_a_complete_sorted_all(package: str) -> None:
    init = ROOT / PACKAGE_DIRS[package] / "__init__.py"
    if not init.exists():
        pytest.fail(f"{package} has no __init__.py")
    if package in ("inferloop.migrations", "inferloop.deploy"):
        return  # not import APIs: Alembic's scripts, shell scripts
    module = importlib.import_module(package)
    exported = list(getattr(module, "__all__", None) or [])
    assert exported, f"{package} declares no __all__"
    missing = _public_names_bound(init) - set(exported) - {"__version__"}
    assert not missing, f"{package} binds public names it does not export: {sorted(missing)}"
    absent = [name for name in exported if not hasattr(module, name)]
    assert not absent, f"{package}.__all__ names what it does not have: {absent}"
    assert exported == sorted(exported, key=_all_sort_key), f"{package}.__all__ is not sorted"
