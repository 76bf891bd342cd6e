"""Real Spark servers for the test lanes, on 127.0.0.1, stopped by their PIDs.

* :func:`start_cluster`: a standalone master and two workers (one core, 1 GiB each),
  started with pyspark's own ``bin/spark-class`` (the pip package has no ``sbin/``).
* :func:`start_connect`: a Spark Connect server (``bin/spark-submit --class
  ...SparkConnectServer``) with delta-spark and Delta's SQL extension, and no Delta Connect
  plugin (not published for Delta 4.0.1).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent
DELTA_PACKAGE = "io.delta:delta-spark_2.13:4.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; log {log}:\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"not listening on {port} after {timeout} s; log {log}:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


def _spawn(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def _env(folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["SPARK_HOME"] = str(SPARK_HOME)
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    env["SPARK_LOG_DIR"] = str(folder)
    env["SPARK_WORKER_DIR"] = str(folder / "work")
    env.pop("SPARK_REMOTE", None)
    return env


@dataclass
class Servers:
    """Processes of one lane; :meth:`stop` ends them (workers first)."""

    url: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            _stop(proc)


def start_cluster(folder: Path, workers: int = 2) -> Servers:
    """A standalone master and ``workers`` workers (1 core, 1 GiB each) on 127.0.0.1."""
    folder.mkdir(parents=True, exist_ok=True)
    env = _env(folder)
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    port, web = free_port(), free_port()
    master = _spawn(
        [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
         "--port", str(port), "--webui-port", str(web)],
        folder / "master.log", env,
    )
    servers = Servers(f"spark://127.0.0.1:{port}", [master])
    try:
        _wait_for_port(master, port, folder / "master.log", 60)
        for i in range(workers):
            log = folder / f"worker{i}.log"
            worker = _spawn(
                [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                 "--cores", "1", "--memory", "1g", "--webui-port", str(free_port()),
                 "--work-dir", str(folder / f"work{i}"), servers.url],
                log, env,
            )
            servers.procs.append(worker)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            registered = sum(
                "Successfully registered with master" in (folder / f"worker{i}.log").read_text(
                    errors="replace"
                )
                for i in range(workers)
            )
            if registered == workers:
                return servers
            time.sleep(0.3)
        raise RuntimeError(f"workers did not register: {_tail(folder / 'worker0.log')}")
    except BaseException:
        servers.stop()
        raise


def start_connect(folder: Path) -> Servers:
    """A Spark Connect server (local[2], Delta's SQL extension) on 127.0.0.1."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "connect.log"
    proc = _spawn(
        [
            str(SPARK_HOME / "bin" / "spark-submit"),
            "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
            "--master", "local[2]",
            "--packages", DELTA_PACKAGE,
            "--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
            "--conf",
            "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
            "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf", f"spark.connect.grpc.binding.port={port}",
            "--conf", "spark.ui.enabled=false",
            "--conf", "spark.sql.shuffle.partitions=2",
            "--conf", f"spark.sql.warehouse.dir={folder / 'warehouse'}",
            "--conf", "spark.driver.memory=2g",
        ],
        log, _env(folder),
    )
    servers = Servers(f"sc://127.0.0.1:{port}", [proc])
    try:
        _wait_for_port(proc, port, log, 180)
    except BaseException:
        servers.stop()
        raise
    return servers
