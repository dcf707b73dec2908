"""docs/architecture.md matches the tree, and the package keeps its layers (read with `ast`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "skilljar_scim"
MAP = ROOT / "docs" / "architecture.md"

# What each layer must not import (docs/architecture.md "Layers"); base and store are closed lists.
ONLY = {"base": {"base"}, "store": {"base", "store"}}
NEVER = {"scim": {"store", "domain", "web", "cli"}, "domain": {"web", "cli"}, "web": {"cli"}}
EDGES_WITH_LAZY_IMPORTS = {"cli"}  # the CLI imports a command group only when it runs


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _layer(path: Path) -> str:
    """Return the folder under the package a module belongs to ("" for the package root)."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else ""


def _imported_layers(path: Path) -> set[tuple[str, int]]:
    """Return (layer, line) for every import of the package in a module, nested ones too."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "skilljar_scim" and len(parts) > 1 and (PACKAGE / parts[1]).is_dir():
                found.add((parts[1], node.lineno))
    return found


def _function_level_imports(path: Path) -> list[int]:
    functions = (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return sorted({n.lineno for f in functions for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))})


def _named_paths() -> set[str]:
    """Return every path the map names in backquotes (a folder ends with /, a file has a suffix)."""
    quoted = re.findall(r"`([^`\s]+)`", MAP.read_text())
    return {q for q in quoted if "/" in q and (q.endswith("/") or re.search(r"\.(py|toml|md)$", q))}


def _exists(named: str) -> bool:
    return (ROOT / named).exists() or (PACKAGE / named).exists()


def test_architecture_map_names_only_paths_that_exist() -> None:
    named = _named_paths()
    assert len(named) > 30  # the check reads the map's paths, not nothing
    assert sorted(n for n in named if not _exists(n)) == []


@pytest.mark.parametrize("layer", ["base", "store", "scim", "domain", "web"])
def test_architecture_map_names_every_module_below_the_cli(layer: str) -> None:
    named = _named_paths()
    modules = [p.relative_to(PACKAGE).as_posix() for p in (PACKAGE / layer).rglob("*.py") if p.name != "__init__.py"]
    assert sorted(m for m in modules if m not in named) == []


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_architecture_layers_import_only_what_they_may(path: Path) -> None:
    layer = _layer(path)
    imported = _imported_layers(path)
    if layer in ONLY:
        assert sorted((target, line) for target, line in imported if target not in ONLY[layer]) == []
    forbidden = NEVER.get(layer, set()) | ({"cli"} if layer != "cli" and layer else set())
    assert sorted((target, line) for target, line in imported if target in forbidden) == []


@pytest.mark.parametrize("path", [p for p in _modules() if _layer(p) not in EDGES_WITH_LAZY_IMPORTS],
                         ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_architecture_no_function_level_imports(path: Path) -> None:
    assert _function_level_imports(path) == []


def test_architecture_checks_catch_a_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The import reader sees a nested import of a higher layer (so a passing run means something)."""
    module = tmp_path / "skilljar_scim" / "store" / "bad.py"
    module.parent.mkdir(parents=True)
    (tmp_path / "skilljar_scim" / "domain").mkdir()
    module.write_text("def f():\n    from skilljar_scim.domain import users\n")
    monkeypatch.setitem(globals(), "PACKAGE", tmp_path / "skilljar_scim")
    assert _imported_layers(module) == {("domain", 2)} and _function_level_imports(module) == [2]
