"""``cluster/local-cluster.sh`` (``python -m syncmaster_ray_dev.local_cluster``): a head plus N worker raylets, each
with its own resources, stopped by PID on Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from syncmaster_ray.ray_client import dashboard_auth_headers

# A dev helper's CLI (three raylets): the long tier. LocalRayHead, its building block, starts every head of CI.
pytestmark = [pytest.mark.integration, pytest.mark.long]


def kill_processes_of_new_ray_dirs(before: set[Path]) -> None:
    """After the helper was killed: its raylets run in sessions of their own and outlive it, so kill every
    process of a Ray temp dir (``/tmp/smr-ray-*``) that did not exist before the test (on this failure path only:
    a head another session started meanwhile on this machine would go too)."""
    new_dirs = [str(d) for d in set(Path("/tmp").glob("smr-ray-*")) - before]
    for proc in psutil.process_iter(["cmdline"]):
        if any(d in " ".join(proc.info["cmdline"] or ()) for d in new_dirs):
            with contextlib.suppress(psutil.Error):
                proc.kill()


def test_three_node_local_cluster_starts_with_its_resources_and_stops_on_ctrl_c(tmp_path):
    ray_dirs_before = set(Path("/tmp").glob("smr-ray-*"))
    process = subprocess.Popen(
        [sys.executable, "-m", "syncmaster_ray_dev.local_cluster", "--workers", "2", "--head-cpus", "1",
         "--worker-cpus", "2", "--memory-gib", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        dashboard, client_env, lines = None, {}, []
        deadline = time.monotonic() + 300
        while "Ctrl-C stops them" not in "".join(lines[-1:]) and time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line or process.poll() is None, "".join(lines)
            lines.append(line)
            if match := re.search(r"Jobs API: (http://\S+)", line):
                dashboard = match[1]
            if match := re.match(r"clients need (\w+)=(\S+)", line):
                client_env[match[1]] = match[2]
        assert dashboard, "".join(lines)
        # Token authentication by default, with the helper's own token in a file it names for clients.
        assert client_env.get("RAY_AUTH_MODE") == "token" and "RAY_AUTH_TOKEN_PATH" in client_env, lines
        request = urllib.request.Request(f"{dashboard}/api/v0/nodes?detail=1",
                                         headers=dashboard_auth_headers(client_env))
        with urllib.request.urlopen(request, timeout=30) as response:
            nodes = [n for n in json.load(response)["data"]["result"]["result"] if n["state"] == "ALIVE"]
        assert sorted(n["resources_total"]["CPU"] for n in nodes) == [1, 2, 2]
        assert all(n["resources_total"]["memory"] == 1024**3 for n in nodes)

        os.killpg(process.pid, signal.SIGINT)
        # communicate() drains stdout: a child blocked on a full pipe would never exit.
        rest, _ = process.communicate(timeout=120)
        assert process.returncode == 0, "".join(lines) + rest
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            kill_processes_of_new_ray_dirs(ray_dirs_before)
    # Stopped by PID: its process groups are gone (the raylets' and GCS's sessions were its children).
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{dashboard}/api/v0/nodes", timeout=5)


def test_a_head_whose_port_was_taken_before_ray_bound_it_starts_on_fresh_ports():
    """Between our pick and Ray's bind another process can take a port (a CI run lost a head that way, with
    `ray start` exiting 1): the head tries again on fresh ports, and the log says what happened."""
    from syncmaster_ray_dev.local_cluster import LocalRayHead

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        head = LocalRayHead(num_cpus=1, memory_bytes=1024**3, gcs_port=busy)
        try:
            head.start()
            assert head.gcs_port != busy
            log = (Path(head.temp_dir) / "ray-start.log").read_text()
            assert f"--port={busy} " in log and "Failed to start GCS" in log
            request = urllib.request.Request(f"{head.dashboard_url}/api/jobs/", headers=head.auth_headers)
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
        finally:
            head.stop()
