"""Real server processes for the tests: Mosquitto and InfluxDB on free loopback ports.

Each server runs from a temp dir with its own config and log (the pattern of
pytest-postgresql's process factory): started, polled until it answers, and stoppable,
killable and restartable on the same port and data for outage tests. A missing binary fails
with an install hint; it is never a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binary(name: str, package: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/usr/local/sbin")
    if path is None:
        raise RuntimeError(f"{name} not found: install it with `apt-get install {package}` "
                           f"(make test does this when apt is usable)")
    return path


class ServerProcess:
    """One server process; `start`, `stop` (graceful), `kill` (SIGKILL), `restart`."""

    def __init__(self, name: str, argv: list[str], workdir: Path, port: int,
                 ready: Callable[[], bool], startup_timeout: float = 30.0) -> None:
        self.name, self.argv, self.workdir, self.port = name, argv, workdir, port
        self._ready, self._timeout = ready, startup_timeout
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} already runs"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.workdir, start_new_session=True)
        log.close()
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            if self._ready():
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.name} not ready after {self._timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _tcp_ready(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False
    return check


class Mosquitto(ServerProcess):
    """Mosquitto 2 with persistence and the unlimited queue DESIGN.md requires
    (`max_queued_messages 0`; pass 1000 for the stock limit), stock in-flight settings,
    anonymous access on loopback."""

    def __init__(self, workdir: Path, extra_conf: str = "", *,
                 max_queued_messages: int = 0) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            f"max_queued_messages {max_queued_messages}\n"
            "user root\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            "log_dest stderr\n" + extra_conf
        )
        super().__init__("mosquitto", [find_binary("mosquitto", "mosquitto"), "-c", str(conf)],
                         workdir, port, _tcp_ready(port))

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


class InfluxDB(ServerProcess):
    """InfluxDB 1.x (`influxd`) with its HTTP API on a free port and data in a temp dir.

    `data` and `http` are extra settings of those config sections (`{"max-series-per-database":
    "20"}`, values as TOML); a test may change them and `restart` to reconfigure."""

    def __init__(self, workdir: Path, *, auth: bool = False, data: dict[str, str] | None = None,
                 http: dict[str, str] | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        port, self._rpc = free_port(), free_port()
        self.auth, self.data, self.http_settings = auth, dict(data or {}), dict(http or {})
        self.conf = workdir / "influxdb.conf"
        env_argv = [find_binary("influxd", "influxdb"), "-config", str(self.conf)]
        super().__init__("influxd", env_argv, workdir, port, self._ping)
        self.http = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        workdir = self.workdir
        extra_data = "".join(f"  {k} = {v}\n" for k, v in self.data.items())
        extra_http = "".join(f"  {k} = {v}\n" for k, v in self.http_settings.items())
        self.conf.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "127.0.0.1:{self._rpc}"\n'
            f'[meta]\n  dir = "{workdir}/meta"\n  logging-enabled = false\n'
            f'[data]\n  dir = "{workdir}/data"\n  wal-dir = "{workdir}/wal"\n'
            "  query-log-enabled = false\n" + extra_data +
            f'[http]\n  enabled = true\n  bind-address = "127.0.0.1:{self.port}"\n'
            f"  log-enabled = false\n  auth-enabled = {'true' if self.auth else 'false'}\n"
            + extra_http +
            "[monitor]\n  store-enabled = false\n"
            "[subscriber]\n  enabled = false\n"
            "[continuous_queries]\n  log-enabled = false\n"
        )
        super().start()

    def _ping(self) -> bool:
        try:
            return httpx.get(f"{self.http}/ping", timeout=0.5).status_code == 204
        except httpx.HTTPError:
            return False

    def url(self, database: str, user: str = "", password: str = "") -> str:
        creds = f"{user}:{password}@" if user else ""
        return f"influxdb://{creds}127.0.0.1:{self.port}/{database}"

    def query(self, q: str, database: str | None = None, auth: tuple[str, str] | None = None
              ) -> dict[str, object]:
        """Run InfluxQL directly against the server: what a user checks by hand."""
        params = {"q": q, "epoch": "ns"}
        if database:
            params["db"] = database
        r = httpx.post(f"{self.http}/query", params=params, timeout=30, auth=auth)
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]


os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


class ShippedMosquitto(ServerProcess):
    """Mosquitto run from the shipped `deploy/mosquitto/mosquitto.conf`, verbatim but for its
    paths (auth and certificate files from the test's dirs, data in a temp dir) and its three
    listeners (free loopback ports: `port` the collectors' plain loopback one, `collector_tls_port`
    theirs with TLS, `gateway_port` the gateways'); as root it also names the user to stay
    (the shipped file leaves that to the image). `rewritten` lists the lines that differ, for
    the test that checks nothing else was touched."""

    SHIPPED = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "mosquitto.conf"

    def __init__(self, workdir: Path, auth_dir: Path, certs_dir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "data").mkdir(exist_ok=True)
        port, self.gateway_port, self.collector_tls_port = free_port(), free_port(), free_port()
        paths = {"/mosquitto/auth/": f"{auth_dir}/", "/mosquitto/certs/": f"{certs_dir}/",
                 "/mosquitto/data/": f"{workdir}/data/"}
        listeners = {"listener 8883": f"listener {self.gateway_port} 127.0.0.1",
                     "listener 8884": f"listener {self.collector_tls_port} 127.0.0.1",
                     "listener 1883 127.0.0.1": f"listener {port} 127.0.0.1"}
        lines, self.rewritten = [], []
        for line in self.SHIPPED.read_text().splitlines():
            new = listeners.get(line, line)
            for old, repl in paths.items():
                new = new.replace(old, repl)
            if new != line:
                self.rewritten.append((line, new))
            lines.append(new)
        if os.geteuid() == 0:
            lines.append("user root")
        conf = workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        super().__init__("mosquitto-shipped",
                         [find_binary("mosquitto", "mosquitto"), "-c", str(conf)],
                         workdir, port, _tcp_ready(port))

    def url(self, user: str = "", password: str = "", *, tls: bool = False,
            host: str = "127.0.0.1") -> str:
        """On a collectors' listener: the plain loopback one, or with `tls` the TLS one."""
        creds = f"{user}:{password}@" if user else ""
        scheme, port = ("mqtts", self.collector_tls_port) if tls else ("mqtt", self.port)
        return f"{scheme}://{creds}{host}:{port}"

    def gateway_url(self, user: str = "", password: str = "", *,
                    host: str = "127.0.0.1") -> str:
        """On the gateways' listener (TLS, the client id replaced by the username)."""
        creds = f"{user}:{password}@" if user else ""
        return f"mqtts://{creds}{host}:{self.gateway_port}"

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads its password file and ACL."""
        assert self.proc is not None and self.proc.poll() is None
        self.proc.send_signal(signal.SIGHUP)
