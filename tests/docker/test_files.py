"""The shipping files parse and say what issue 7 asks, without an engine (run by `make test`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from qkt.dsl import compile_file
from qkt.paths import StateDir
from qkt.supervisor.config import build_config, read_config_file
from tests.helpers import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def triggers(workflow: dict[str, Any]) -> Any:
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True; GitHub reads it as "on".
    return workflow.get("on", workflow.get(True))


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if str(step.get("uses", "")).startswith(f"{action}@")]


def test_release_workflow_pushes_tag_and_latest_to_ghcr_on_v_tags() -> None:
    workflow = load(WORKFLOWS / "docker.yml")
    assert triggers(workflow) == {"push": {"tags": ["v*"]}}
    assert workflow["permissions"]["packages"] == "write"
    (job,) = workflow["jobs"].values()
    for action in ("docker/setup-buildx-action", "docker/metadata-action"):
        assert len(steps_using(job, action)) == 1, action
    (login,) = steps_using(job, "docker/login-action")
    assert login["with"]["registry"] == "ghcr.io"
    assert login["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    (meta,) = steps_using(job, "docker/metadata-action")
    assert meta["with"]["images"] == "ghcr.io/${{ github.repository_owner }}/qkt"
    assert "type=ref,event=tag" in meta["with"]["tags"]
    assert "type=raw,value=latest" in meta["with"]["tags"]
    builds = steps_using(job, "docker/build-push-action")
    pushing = [step for step in builds if step["with"].get("push") is True]
    assert len(pushing) == 1
    assert pushing[0]["with"]["tags"] == "${{ steps.meta.outputs.tags }}"
    for step in builds:
        assert step["with"]["file"] == "docker/Dockerfile"
        assert step["with"]["cache-from"] == "type=gha"
        assert step["with"]["cache-to"].startswith("type=gha")


def test_ci_workflow_runs_make_test_on_311_and_312_for_pushes_and_pull_requests() -> None:
    workflow = load(WORKFLOWS / "ci.yml")
    assert set(triggers(workflow)) == {"push", "pull_request"}
    test = workflow["jobs"]["test"]
    assert test["strategy"]["matrix"]["python-version"] == ["3.11", "3.12"]
    (setup,) = steps_using(test, "actions/setup-python")
    assert setup["with"]["python-version"] == "${{ matrix.python-version }}"
    assert any(str(step.get("run", "")).startswith("make test ") for step in test["steps"])
    docker = workflow["jobs"]["docker"]
    assert any(str(step.get("run", "")).startswith("make test-docker") for step in docker["steps"])


def test_compose_service_builds_the_dockerfile_and_publishes_on_loopback() -> None:
    compose = load(REPO_ROOT / "docker-compose.yml")
    assert "version" not in compose  # v2 warns about it; v1 >= 1.27 does without
    service = compose["services"]["qkt"]
    assert service["build"]["dockerfile"] == "docker/Dockerfile"
    assert service["build"]["args"]["BASE_IMAGE"] == "${QKT_BASE_IMAGE:-python:3.12-slim}"
    assert "./examples/strategies:/strategies:ro" in service["volumes"]
    assert "qkt-state:/var/lib/qkt" in service["volumes"]
    assert "qkt-state" in compose["volumes"]
    assert service["ports"] == ["127.0.0.1:${QKT_HOST_PORTS:-7101-7120}:7101-7120"]
    assert service["restart"] == "unless-stopped"
    logging = service["logging"]
    assert logging["driver"] == "json-file"
    assert {"max-size", "max-file"} <= set(logging["options"])


def test_dockerfile_builds_from_any_base_and_keeps_the_ports_of_compose() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines()]
    first_from = next(i for i, line in enumerate(lines) if line.startswith("FROM "))
    assert "ARG BASE_IMAGE=python:3.12-slim" in lines[:first_from]
    assert [line for line in lines if line.startswith("FROM ")] == [
        "FROM ${BASE_IMAGE} AS build",
        "FROM ${BASE_IMAGE}",
    ]
    # The interpreter is found as python3 in /usr/bin (Debian) or /usr/local/bin (python:slim).
    assert "python3 -m venv /opt/qkt" in text
    assert re.search(r"--worker-ports\",\s*\"7101-7120\"", text)
    assert "EXPOSE 7101-7120" in lines


def test_the_extension_example_bundle_compiles_and_its_settings_load(tmp_path: Path) -> None:
    folder = REPO_ROOT / "examples" / "docker"
    bundle = sorted((folder / "strategies").glob("*.qkt"))
    assert len(bundle) >= 2
    for path in bundle:
        assert compile_file(path).name == path.stem  # --load-dir names it after the file's stem
    config = build_config(StateDir(tmp_path), read_config_file(folder / "qkt.toml"))
    assert (config.feed.speed, config.feed.seed) == (60.0, 7)
    assert "FROM ${QKT_IMAGE}" in (folder / "Dockerfile").read_text(encoding="utf-8")


def test_dockerignore_keeps_local_state_and_caches_out_of_the_build() -> None:
    rules = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Everything is excluded, then only what the image installs is let back in.
    assert rules[0] == "*"
    assert {rule for rule in rules if rule.startswith("!")} == {
        "!pyproject.toml",
        "!README.md",
        "!qkt/",
    }
    assert "**/__pycache__" in rules
