"""How the suite chooses between testcontainers and the local launcher (no platform needed).

The container path itself needs a Docker engine and ``testcontainers[kafka,postgres]``; these
tests pin down the choice, so that a machine without Docker falls back instead of failing, and
``FABRIQUE_E2E_CONTAINERS=require`` refuses to fall back."""

from __future__ import annotations

import importlib.util
import socket
import threading
from pathlib import Path

import pytest

from . import containers

pytestmark = pytest.mark.e2e


def test_never_means_the_local_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(containers.MODE_ENV, "never")
    assert containers.containers_usable() == (False, f"{containers.MODE_ENV}=never")


def test_an_unknown_mode_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(containers.MODE_ENV, "sometimes")
    with pytest.raises(ValueError, match="auto, never or require"):
        containers.mode()


def test_without_testcontainers_the_launcher_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(containers.MODE_ENV, "auto")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        containers.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "testcontainers" else real(name, *a),
    )
    assert containers.containers_usable() == (
        False,
        "the testcontainers package is not installed",
    )


def _fake_engine(path: Path, answer: bytes) -> threading.Thread:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(answer)
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_docker_socket_that_answers_ping_is_an_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sock = tmp_path / "docker.sock"
    thread = _fake_engine(sock, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    answers, why = containers.docker_engine()
    thread.join(5)
    assert answers, why


def test_a_dead_docker_socket_is_no_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"
    thread = _fake_engine(sock, b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    answers, why = containers.docker_engine()
    thread.join(5)
    assert not answers and "no Docker engine" in why


def test_this_machine_is_reported_either_way() -> None:
    """Whatever the machine, the decision comes with a reason (shown in the session summary)."""
    answers, why = containers.docker_engine()
    assert isinstance(answers, bool) and why
