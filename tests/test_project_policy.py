"""Project-wide policies that no single module owns: the torch floor, the test suite's own strictness, and the
shape of the code (no import cycles, a worker module nothing imports, short training functions)."""

from __future__ import annotations

import ast
import re
import warnings
from importlib.metadata import requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from studio.engine import handoff

ROOT = Path(__file__).resolve().parents[1]


def _torch_requirement() -> Requirement:
    return next(Requirement(d) for d in requires("studio") or [] if Requirement(d).name == "torch")


def test_torch_floor_excludes_versions_with_unsafe_weights_only_loading():
    """CVE-2025-32434: torch.load(weights_only=True) of optimizer and RNG state is unsafe below 2.6."""
    spec = _torch_requirement().specifier
    assert "2.5.1" not in spec
    assert "2.6.0" in spec
    assert "2.13.0" in spec  # the CPU build on this project's machines


def test_handoff_fallback_torch_range_matches_the_project():
    assert Requirement(handoff.TORCH_RANGE).specifier == _torch_requirement().specifier


def test_setup_fallback_torch_range_matches_the_project():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    fallback = re.search(r'"(torch>=[^"]+)"', setup)
    assert fallback, "setup.sh installs torch from a range when the pinned CPU build is missing"
    assert Requirement(fallback.group(1)).specifier == _torch_requirement().specifier


def test_a_deprecation_in_studios_own_code_fails_the_test():
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("old API", DeprecationWarning, "studio/engine/example.py", 1,
                               module="studio.engine.example")


def test_a_deprecation_inside_a_library_does_not_fail_the_test():
    with warnings.catch_warnings(record=True):
        warnings.warn_explicit("old API", DeprecationWarning, "somelib/x.py", 1, module="somelib.x")


def test_qt_warnings_fail_the_test(pytestconfig: pytest.Config):
    assert pytestconfig.getini("qt_log_level_fail") == "WARNING"


# No engine module is exempt from mypy --strict any more (issue 17 took out the last: models.catalog,
# models.download, models.facts, objectives, training.*); none may come back.
MYPY_EXEMPT_AT_MOST: frozenset[str] = frozenset()


def test_the_mypy_exemptions_only_shrink():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert settings["strict"] is True
    exempt = {module for override in settings.get("overrides", []) if override.get("ignore_errors")
              for module in override["module"]}
    assert exempt <= MYPY_EXEMPT_AT_MOST, f"new exemptions: {sorted(exempt - MYPY_EXEMPT_AT_MOST)}"
    assert "mypy --strict studio/engine" in (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")


# ---- the shape of the code -------------------------------------------------------------------------------

WORKER_MODULE = "studio.engine.training.worker"
MAX_TRAINING_FUNCTION_LINES = 60


def _imported_modules(tree: ast.AST) -> set[str]:
    """Every module an `import` or `from ... import` names, at any depth (function-level imports count);
    `from package import name` counts as importing package.name too, since the name may be a module."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_nothing_imports_the_worker_module():
    """The worker module is a process entry point only (`python -m`); what it runs lives in
    studio.engine.training.entry and .recipe, which is what code and tests import."""
    importers = [
        str(path.relative_to(ROOT))
        for folder in ("studio", "tests", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if WORKER_MODULE in _imported_modules(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert importers == [], f"{WORKER_MODULE} is imported by {importers}"


def _import_cycles(graph) -> list[list[str]]:
    """The strongly connected groups of two or more studio modules (Tarjan's algorithm): each is a cycle."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)
    return cycles


def test_the_studio_package_has_no_import_cycle():
    """Every import counts, function-level and TYPE_CHECKING ones included: a cycle hidden inside a function
    is still a knot that a change on one side pulls through the other."""
    grimp = pytest.importorskip("grimp")  # installed with import-linter (the dev extra)

    cycles = _import_cycles(grimp.build_graph("studio", cache_dir=None))
    assert cycles == [], "import cycles among studio modules:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_training_function_is_longer_than_a_screen():
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in sorted((ROOT / "studio" / "engine" / "training").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_TRAINING_FUNCTION_LINES
    ]
    assert long == [], f"functions over {MAX_TRAINING_FUNCTION_LINES} lines: {long}"
