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
