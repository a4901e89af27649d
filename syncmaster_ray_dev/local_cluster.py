"""A throw-away local Ray head for development, the demo and the tests.

Its own temp dir and ports, started in its own process group with ``ray start --block`` and stopped by that PID,
never with ``ray stop``: ``ray stop`` kills every Ray process of the user, other heads and test sessions included.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self

import psutil

from syncmaster_ray.node_env import node_environment
from syncmaster_ray.ray_client import dashboard_auth_headers

GiB = 1024**3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PortAllocator:
    """Ports for a local head and its nodes: free now, never handed out before in this process, and all from
    ``band``, below Linux's ephemeral range (32768 and up).

    Free now is not enough on its own. A port from the ephemeral range can be taken by any outgoing connection
    between our pick and Ray's bind, and Ray's own processes open many while the later ones start (a CI run lost a
    head that way: ``ray start`` exited 1). Ray also binds its worker ports only when workers start, so a later
    pick could land inside an earlier range. Processes that start heads side by side (parallel test workers) each
    set a band of their own.
    """

    band: ClassVar[range] = range(20000, 32000)
    _taken_in_process: ClassVar[set[int]] = set()

    def __init__(self, taken: set[int] | None = None) -> None:
        self.taken = taken if taken is not None else set()

    def port(self) -> int:
        return self.range(1)

    def range(self, size: int) -> int:
        """A start port with ``size`` free, unallocated ports from it on (one port, or Ray's worker port range)."""
        band = self.band
        for _ in range(500):
            start = random.randrange(band.start, band.stop - size)
            ports = set(range(start, start + size))
            if not ports & (self.taken | self._taken_in_process) and all(_is_free(p) for p in ports):
                self.taken |= ports
                self._taken_in_process.update(ports)
                return start
        raise RuntimeError(f"no {size} free port(s) in {band.start}-{band.stop - 1}")


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class _StartExited(Exception):
    """``ray start`` exited before its head answered."""


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(no log: {error})"


def _group_alive(pgid: int) -> bool:
    """Does any live (non-zombie) process remain in the group?"""
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except OSError:  # gone meanwhile
            continue
    return False


class _GroupLeader:
    """A child started in a process group of its own (``start_new_session``), stopped with its whole group."""

    process: subprocess.Popen | None
    stop_grace: ClassVar[float] = 8  # seconds between SIGTERM and SIGKILL

    def start(self, timeout: float = 120) -> Self:
        raise NotImplementedError

    def stop(self, grace: float | None = None) -> None:
        if self.process is None:
            return
        _stop_group(self.process, self.stop_grace if grace is None else grace)
        self.process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class LocalRayHead(_GroupLeader):
    """``with LocalRayHead(env=...) as head: head.dashboard_url``."""

    num_cpus: int = 4
    memory_bytes: int = 8 * GiB
    object_store_bytes: int = 512 * 1024**2
    env: dict[str, str] = field(default_factory=dict)
    resources: str | None = None
    temp_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="smr-ray-", dir="/tmp"))
    log_path: Path | None = None
    process: subprocess.Popen | None = None
    ports: PortAllocator = field(default_factory=PortAllocator)
    dashboard_port: int = 0  # 0: picked by `ports`
    gcs_port: int = 0
    metrics_export_port: int = 0  # Prometheus' scrape port of the head; picked at each start
    # Where the node's settings file and token file go (outside the temp dir, whose logs the dashboard serves).
    node_files_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="smr-ray-node-", dir="/tmp"))
    # True only to reproduce a misconfigured node: our settings and the token left in the node's environment.
    secrets_in_env: bool = False
    # The token when neither `env` nor this process sets RAY_AUTH_MODE (see ray_env).
    generated_token: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def session_id(self) -> int:
        """Every process of this head (raylet, workers, actors and their JVMs) shares this session id."""
        assert self.process is not None, "the head is not running"
        return self.process.pid

    @property
    def gcs_address(self) -> str:
        return f"{socket.gethostbyname(socket.gethostname())}:{self.gcs_port}"

    def command(self) -> list[str]:
        ray = str(Path(sys.executable).with_name("ray"))
        ports = self.ports
        ports.taken |= {self.gcs_port, self.dashboard_port}
        worker_ports = ports.range(60)
        self.metrics_export_port = ports.port()
        command = [
            ray, "start", "--head", "--block", "--disable-usage-stats",
            f"--temp-dir={self.temp_dir}",
            f"--port={self.gcs_port}",
            "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}",
            f"--num-cpus={self.num_cpus}", "--num-gpus=0",
            f"--memory={self.memory_bytes}", f"--object-store-memory={self.object_store_bytes}",
            f"--node-manager-port={ports.port()}", f"--object-manager-port={ports.port()}",
            f"--ray-client-server-port={ports.port()}", f"--dashboard-agent-listen-port={ports.port()}",
            f"--dashboard-agent-grpc-port={ports.port()}", f"--metrics-export-port={self.metrics_export_port}",
            f"--runtime-env-agent-port={ports.port()}",
            f"--min-worker-port={worker_ports}", f"--max-worker-port={worker_ports + 59}",
        ]
        if self.resources:
            command.append(f"--resources={self.resources}")
        return command

    def ray_env(self) -> dict[str, str]:
        """The environment of this head's Ray processes and of the nodes that join it: our settings and the Ray
        token are in files only (``node_env``), so no process of the node carries them."""
        env = {**os.environ, **self.env}
        # The job entrypoint runs `python -m syncmaster_ray.job`: make `python` this interpreter.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        # Token authentication unless told otherwise (RAY_AUTH_MODE in `env` or this process's environment), with
        # a token of this head's own. Always explicit: Ray 2.60's `ray start --head` turns it on by itself when
        # RAY_AUTH_MODE is unset and ~/.ray/auth_token exists, while clients given an address (our worker,
        # `status`) follow RAY_AUTH_MODE only.
        if "RAY_AUTH_MODE" not in env:
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.generated_token)
        if not self.secrets_in_env:
            env = node_environment(env, Path(self.node_files_dir))
        return env

    def client_env(self) -> dict[str, str]:
        """What a client of this head (a Celery worker, `status`, this process) needs for Ray's authentication."""
        env = self.ray_env()
        return {name: env[name] for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH") if name in env}

    @property
    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a request to this head's dashboard (``{}`` without token authentication)."""
        return dashboard_auth_headers(self.ray_env())

    def __post_init__(self) -> None:
        self.dashboard_port = self.dashboard_port or self.ports.port()
        self.gcs_port = self.gcs_port or self.ports.port()

    start_attempts: ClassVar[int] = 3

    def start(self, timeout: float = 120) -> LocalRayHead:
        """Start the head and wait for its dashboard. When ``ray start`` exits while starting (a port taken by
        another process between our pick and its bind, say), try again on fresh ports; the error keeps the log."""
        Path(self.temp_dir).mkdir(parents=True, exist_ok=True)  # again after a stop (a restart)
        log_path = self.log_path or Path(self.temp_dir) / "ray-start.log"
        for attempt in range(1, self.start_attempts + 1):
            try:
                self._launch(log_path)
                self._wait_ready(timeout, log_path)
                return self
            except _StartExited:
                self.stop(keep_files=True)  # whatever of the group is left
                if attempt == self.start_attempts:
                    raise RuntimeError(f"ray start exited {attempt} times; the last log:\n{_tail(log_path)}") from None
                self.dashboard_port, self.gcs_port = self.ports.port(), self.ports.port()
        raise AssertionError("unreachable")

    def _launch(self, log_path: Path) -> None:
        env = self.ray_env()
        env.setdefault("RAY_DEDUP_LOGS", "0")
        command = self.command()
        with open(log_path, "ab") as log:
            log.write(f"--- {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _wait_ready(self, timeout: float, log_path: Path) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise _StartExited(self.process.returncode)
            try:
                request = urllib.request.Request(f"{self.dashboard_url}/api/jobs/", headers=self.auth_headers)
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop(keep_files=True)
        raise RuntimeError(f"the Ray head did not answer within {timeout:.0f} s; see {log_path}")

    def stop(self, grace: float | None = None, keep_files: bool = False) -> None:
        """SIGTERM the whole process group of ``ray start --block``, then SIGKILL what is left; remove its temp dir
        (sessions, logs, spilled objects) unless ``keep_files`` (a head that failed to start keeps its logs)."""
        super().stop(grace)
        if not keep_files:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            shutil.rmtree(self.node_files_dir, ignore_errors=True)


@dataclass
class LocalRayNode(_GroupLeader):
    """A second raylet joining a local head (``ray start --address ... --block``): a two-node cluster on one machine.

    Each node has its own resources; on one machine they share the filesystem, so tests assert *where* things ran
    rather than relying on files being invisible.
    """

    head: LocalRayHead
    num_cpus: int = 2
    memory_bytes: int = 4 * GiB
    object_store_bytes: int = 256 * 1024**2
    resources: str | None = None
    process: subprocess.Popen | None = None
    nodes_before: int = 1  # nodes alive before this one joins (the head, and earlier worker nodes)

    def command(self) -> list[str]:
        ray = str(Path(sys.executable).with_name("ray"))
        ports = self.head.ports  # shared with the head: no overlap with its (not yet bound) worker ports
        worker_ports = ports.range(40)
        command = [
            ray, "start", "--block", "--disable-usage-stats", f"--address={self.head.gcs_address}",
            f"--num-cpus={self.num_cpus}", "--num-gpus=0", f"--memory={self.memory_bytes}",
            f"--object-store-memory={self.object_store_bytes}",
            f"--node-manager-port={ports.port()}", f"--object-manager-port={ports.port()}",
            f"--dashboard-agent-listen-port={ports.port()}", f"--dashboard-agent-grpc-port={ports.port()}",
            f"--metrics-export-port={ports.port()}", f"--runtime-env-agent-port={ports.port()}",
            f"--min-worker-port={worker_ports}", f"--max-worker-port={worker_ports + 39}",
        ]
        if self.resources:
            command.append(f"--resources={self.resources}")
        return command

    def start(self, timeout: float = 120) -> LocalRayNode:
        env = self.head.ray_env()
        log_path = Path(self.head.temp_dir) / f"ray-node-{free_port()}.log"
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start (worker node) exited with {self.process.returncode}; see {log_path}")
            if self._alive_nodes() > self.nodes_before:
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the worker node did not join within {timeout:.0f} s; see {log_path}")

    def _alive_nodes(self) -> int:
        import json

        try:
            request = urllib.request.Request(f"{self.head.dashboard_url}/api/v0/nodes?limit=100",
                                             headers=self.head.auth_headers)
            with urllib.request.urlopen(request, timeout=5) as response:
                nodes = json.load(response)["data"]["result"]["result"]
        except (OSError, ValueError, KeyError):
            return 0
        return sum(1 for node in nodes if node.get("state") == "ALIVE")

    @property
    def session_id(self) -> int:
        assert self.process is not None, "the node is not running"
        return self.process.pid


def _stop_group(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM a child's whole process group, then SIGKILL what is left, and reap the child."""
    pgid = process.pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _group_alive(pgid):
            time.sleep(0.2)
        if not _group_alive(pgid):
            break
    process.wait(timeout=5)


@dataclass
class LocalCeleryWorker(_GroupLeader):
    """``python -m celery -A syncmaster_ray.worker worker -Q <slugs>`` as a child process group."""

    queues: str
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="smr-celery-", suffix=".log")[1]))
    concurrency: int | None = 2  # None: the app's default (threads pool, worker_concurrency)
    process: subprocess.Popen | None = None
    stop_grace: ClassVar[float] = 20

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", "syncmaster_ray.worker", "worker",
            "-Q", self.queues, *([f"--concurrency={self.concurrency}"] if self.concurrency else []), "--loglevel=INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            f"--hostname=smr-{os.getpid()}-{free_port()}@%h",
        ]

    def process_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def start(self, timeout: float = 60) -> Self:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), env=self.process_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited with {self.process.returncode}; see {self.log_path}")
            if b" ready." in self.log_path.read_bytes():
                return self
            time.sleep(0.3)
        raise RuntimeError(f"the Celery worker was not ready within {timeout:.0f} s; see {self.log_path}")


def main(argv: list[str] | None = None) -> None:
    """``python -m syncmaster_ray_dev.local_cluster``: a head plus N worker raylets on this machine until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m syncmaster_ray_dev.local_cluster", description=main.__doc__)
    parser.add_argument("--workers", type=int, default=1, help="worker raylets besides the head (default 1)")
    parser.add_argument("--head-cpus", type=int, default=2, help="logical CPUs of the head (default 2)")
    parser.add_argument("--worker-cpus", type=int, default=2, help="logical CPUs of each worker (default 2)")
    parser.add_argument("--memory-gib", type=int, default=4, help="memory of each node in GiB (default 4)")
    args = parser.parse_args(argv)
    # A shell starting us in the background without job control hands SIGINT down ignored, and Python then leaves
    # it ignored: Ctrl-C (or a script's kill -INT) would never stop the nodes. SIGTERM stops them the same way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    head = LocalRayHead(num_cpus=args.head_cpus, memory_bytes=args.memory_gib * GiB).start()
    nodes = []
    try:
        for index in range(args.workers):
            nodes.append(LocalRayNode(head=head, num_cpus=args.worker_cpus, memory_bytes=args.memory_gib * GiB,
                                      nodes_before=index + 1).start())
        print(f"Ray dashboard and Jobs API: {head.dashboard_url} (SYNCMASTER__RAY__ADDRESS); GCS {head.gcs_address}")
        for name, value in head.client_env().items():
            print(f"clients need {name}={value}")
        print(f"{1 + len(nodes)} node(s); Ctrl-C stops them (by PID, never `ray stop`)", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for node in reversed(nodes):
            node.stop()
        head.stop()


if __name__ == "__main__":
    main()
