"""Helpers for the docker tests: the engine, compose, the image build (real commands, no mocks)."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Mapping
from typing import Any, Final

from tests.helpers import REPO_ROOT

LOCAL_BASE: Final = "qkt-local/python:bookworm"  # what the local engine script builds
PUBLIC_BASE: Final = "python:3.12-slim"  # the Dockerfile's default
BUILD_TIMEOUT_S: Final = 900.0


def run(
    *argv: str, timeout: float = 120.0, env: Mapping[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository root; with `check`, fail showing its output."""
    result = subprocess.run(
        list(argv),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def engine_problem() -> str | None:
    """None if a Docker engine answers, else why not (the reason the docker tests skip with)."""
    if shutil.which("docker") is None:
        return "no `docker` command on PATH"
    try:
        result = run("docker", "info", "--format", "{{.ServerVersion}}", timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30 s"
    if result.returncode != 0 or not result.stdout.strip():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no Docker engine answers (`docker info`: {last})"
    return None


def compose_command() -> list[str] | None:
    """`docker-compose` (v1) if installed, else the `docker compose` plugin (v2), else None."""
    if shutil.which("docker-compose") is not None:
        return ["docker-compose"]
    if run("docker", "compose", "version", check=False, timeout=30).returncode == 0:
        return ["docker", "compose"]
    return None


def base_image() -> str:
    """$QKT_BASE_IMAGE, else the local base when it exists (no registry here), else the public."""
    chosen = os.environ.get("QKT_BASE_IMAGE")
    if chosen:
        return chosen
    local = run("docker", "image", "inspect", LOCAL_BASE, check=False, timeout=30)
    return LOCAL_BASE if local.returncode == 0 else PUBLIC_BASE


def build(tag: str, context: str, *, dockerfile: str | None = None, **args: str) -> None:
    """`docker build` with host networking (pip and apt reach their registries that way here)."""
    argv = ["docker", "build", "--network", "host", "--tag", tag]
    if dockerfile is not None:
        argv += ["--file", dockerfile]
    for name, value in args.items():
        argv += ["--build-arg", f"{name}={value}"]
    run(*argv, context, timeout=BUILD_TIMEOUT_S)


def inspect(kind: str, name: str, template: str) -> str:
    """`docker <kind> inspect --format TEMPLATE NAME`, stripped."""
    return run("docker", kind, "inspect", "--format", template, name).stdout.strip()


_LISTINGS: Final = {
    "containers": ("docker", "ps", "--all", "--format", "{{.Names}}"),
    "networks": ("docker", "network", "ls", "--format", "{{.Name}}"),
    "volumes": ("docker", "volume", "ls", "--format", "{{.Name}}"),
}


def leftovers(project: str) -> dict[str, list[str]]:
    """Containers, networks and volumes of a compose project, by label or by name prefix."""
    found: dict[str, list[str]] = {}
    label = f"label=com.docker.compose.project={project}"
    # v1 names things project_qkt_1, v2 project-qkt-1; networks and volumes project_... in both.
    prefixes = (f"{project}_", f"{project}-")
    for kind, listing in _LISTINGS.items():
        labelled = run(*listing, "--filter", label).stdout.split()
        named = [name for name in run(*listing).stdout.split() if name.startswith(prefixes)]
        found[kind] = sorted(set(labelled) | set(named))
    return found


def free_port_block(size: int) -> int:
    """The first port of `size` consecutive ports free on 127.0.0.1, below the ephemeral range."""
    for _ in range(200):
        first = random.randrange(20000, 32000 - size)
        if all(_bindable(port) for port in range(first, first + size)):
            return first
    raise AssertionError(f"no block of {size} free ports on 127.0.0.1")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def get_json(url: str) -> Any:
    """GET a loopback URL without any proxy from the environment; the decoded JSON body."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return json.loads(response.read())
