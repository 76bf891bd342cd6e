"""A throwaway redis-server for tests: ``redis_url`` fixture (session scope).

The server runs on 127.0.0.1 on a free port, with no persistence (``--save ""
--appendonly no``), in a temporary folder, and is stopped by its PID at the end of the
session. Without a ``redis-server`` binary the tests that need it fail:
``scripts/install_redis.sh`` (run by ``scripts/test.sh``) installs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_redis(
    folder: str, *, port: int | None = None, persist: bool = False
) -> tuple[subprocess.Popen[bytes], int]:
    """Start redis-server in ``folder``; return the process and its port.

    ``port`` restarts a server on a known port; ``persist`` turns on the append-only file
    (fsync on every write), so a restart in the same folder finds what was stored.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server")
    for _ in range(5 if port is None else 1):
        chosen = _free_port() if port is None else port
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(chosen),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if persist else "no",
                "--appendfsync",
                "always",
                "--dir",
                folder,
                "--protected-mode",
                "yes",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", chosen), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return proc, chosen
            except OSError:
                time.sleep(0.05)
        stop_redis(proc)  # port taken meanwhile or too slow: try another port
    raise RuntimeError("could not start redis-server on a free port")


def stop_redis(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started by :func:`start_redis` (by its PID)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a private redis-server for this test session (db 0)."""
    folder = tempfile.mkdtemp(prefix="seeknal-redis-")
    try:
        proc, port = start_redis(folder)
    except FileNotFoundError:
        pytest.fail("redis-server is not installed: run scripts/install_redis.sh")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_redis(proc)
        shutil.rmtree(folder, ignore_errors=True)
