"""Docker tier: the lab as a docker-compose project, reached through container namespaces.

pytest-docker starts docker/docker-compose.yml (compose v1) on ctdrill's own engine
(scripts/docker-engine.sh, socket under /run/ctdrill/docker); `docker_lab` attaches the
containers' network namespaces as `ctd-docker-<role>` and writes the netns inventory.
Without a running engine the tier is skipped, except in CI, where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ctdrill.lab import docker
from ctdrill.lab.docker import DockerLab

os.environ.setdefault("DOCKER_HOST", f"unix://{docker.ENGINE_SOCKET}")



@pytest.fixture(scope="session")
def docker_engine() -> str:
    """The engine's address; skip (or, in CI, fail) when it does not answer."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, netfilter)")
    host = docker.docker_host()
    if not docker.engine_answers(host):
        message = (f"no Docker engine answers at {host}: "
                   "run 'bash scripts/docker-engine.sh start' as root")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return host


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    return "docker-compose"  # compose v2 is not available here


@pytest.fixture(scope="session")
def docker_compose_file(docker_engine: str) -> str:
    docker.prepare_build_context()
    return str(docker.COMPOSE_FILE)


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return docker.DEFAULT_PROJECT


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    return ["up --build -d"]


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    return ["down -v -t 0"]  # PID 1 is tini, but don't wait for anything


@pytest.fixture(scope="session")
def docker_lab(docker_engine: str, docker_services: object,
               docker_compose_project_name: str) -> Iterator[DockerLab]:
    """The attached lab; detached (names, locks, files) before compose takes it down."""
    try:
        yield docker.attach(docker_compose_project_name, docker_engine)
    finally:
        docker.detach(docker_compose_project_name)
