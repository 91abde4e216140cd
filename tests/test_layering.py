"""The package layers of style.md: a module imports only its own layer or lower ones."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO_ROOT

# Lower number = lower layer. Top-level modules are layer 0.
LAYERS = {
    "market": 1,
    "dsl": 1,
    "hub": 2,
    "engine": 2,
    "worker": 3,
    # Alerts: the daemon (supervisor) publishes to it; it knows nothing of supervisor/control/cli.
    "notify": 3,
    "supervisor": 4,
    "control": 5,
    "cli": 6,
}
# Allowed edges inside one layer: the compiler resolves timeframes and keys with market.models.
ALLOWED = {("dsl", "market")}
# Entry points sit on top of everything by design.
ENTRY_POINTS = {"qkt/__main__.py"}


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "qkt" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else "<top>"


def test_no_module_imports_a_higher_layer() -> None:
    offenders = []
    for path in sorted((REPO_ROOT / "qkt").rglob("*.py")):
        if str(path.relative_to(REPO_ROOT)) in ENTRY_POINTS:
            continue
        rel = path.relative_to(REPO_ROOT).with_suffix("")
        here = _package_of(".".join(rel.parts))
        if here is None:
            continue
        level = LAYERS.get(here, 0)
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                there = _package_of(name)
                if there is None or there == here or there == "<top>":
                    continue
                if LAYERS[there] > level or (
                    LAYERS[there] == level and (here, there) not in ALLOWED
                ):
                    offenders.append(f"{Path(*rel.parts)}.py imports {name}")
    assert offenders == []


# Serializers: their job is to turn a typed object into JSON at the edge, inside its own part.
_SERIALIZERS = {"to_json", "export", "from_json", "candle_to_json", "trade_json"}
# Untyped on purpose, and not a wire record between parts: `qkt check --json` prints the DSL's
# summary as it is; the TOML file is checked key by key where it is read; the engine's own
# summary serves its tests (the worker builds its typed record from the engine's typed
# properties); the probe hands the worker's raw JSON to the registry, in its own package, which
# decodes it into a RunningStatus (keeping what a newer worker adds).
_UNTYPED_OK = {
    ("dsl", "summarize"),
    ("dsl", "action"),
    ("supervisor", "read_config_file"),
    ("engine", "status"),
    ("supervisor", "status"),
}
_UNTYPED = {"Any", "dict[str, Any]", "list[dict[str, Any]]", "builtins.list[dict[str, Any]]"}


def _untyped_returns(tree: ast.Module) -> set[str]:
    """Public module functions and methods of public classes whose return annotation is JSON
    without a type (route handlers, decorated, answer HTTP: their response model checks them;
    nested helpers are private to their function)."""
    candidates: list[ast.stmt] = list(tree.body)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            candidates += node.body
    return {
        node.name
        for node in candidates
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.returns is not None
        and not node.decorator_list
        and ast.unparse(node.returns) in _UNTYPED
        and not node.name.startswith("_")
        and node.name not in _SERIALIZERS
    }


def _calls(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                names.add(node.func.attr)
            elif isinstance(node.func, ast.Name):
                names.add(node.func.id)
    return names


def test_no_untyped_json_record_crosses_a_package_boundary() -> None:
    """A function that hands a wire record to another part returns a typed record (a frozen
    dataclass), never `dict[str, Any]`: a field is spelled in one place and mypy sees every use.
    By name: a public function returning untyped JSON that another package calls is an offender."""
    trees = {}
    for path in sorted((REPO_ROOT / "qkt").rglob("*.py")):
        rel = path.relative_to(REPO_ROOT).with_suffix("")
        package = _package_of(".".join(rel.parts))
        if package is not None and package != "<top>":
            trees[path] = (package, ast.parse(path.read_text()))
    untyped: dict[str, set[str]] = {}
    for package, tree in trees.values():
        for name in _untyped_returns(tree):
            if (package, name) not in _UNTYPED_OK:
                untyped.setdefault(name, set()).add(package)
    offenders = []
    for path, (package, tree) in trees.items():
        for name in sorted(_calls(tree) & set(untyped)):
            others = untyped[name] - {package}
            if others and package not in untyped[name]:
                offenders.append(f"{path.relative_to(REPO_ROOT)} calls {name} of {sorted(others)}")
    assert offenders == []
