"""A real Label Studio server for the tests, started the way a user starts one: ``./dev.sh labelstudio``.

One server per test session (a start takes about half a minute to a minute), on a free loopback port,
with its SQLite database under the session's temporary folder and a user, password and token made up
for the session. Label Studio is installed by ``./dev.sh labelstudio install`` when it is missing
(``./dev.sh test`` installs it before pytest); the tests that need it skip with the reason only when
it cannot be installed. Annotators' work is submitted through Label Studio's HTTP API, as its
front end does.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
LABEL_STUDIO = REPO / ".venv-labelstudio" / "bin" / "label-studio"
START_TIMEOUT_S = 240


@dataclass
class Server:
    """A running Label Studio: its URL, the session user's e-mail, password and legacy API token."""

    url: str
    username: str
    password: str
    token: str
    log: Path

    def request(self, method: str, path: str, body: Any = None, params: str = "") -> Any:
        req = urllib.request.Request(
            f"{self.url}{path}{params}", data=json.dumps(body).encode() if body is not None else None, method=method
        )
        req.add_header("Authorization", f"Token {self.token}")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def tasks(self, project: int) -> list[dict[str, Any]]:
        answer = self.request("GET", "/api/tasks", params=f"?project={project}&fields=all&page_size=1000")
        return sorted(answer["tasks"], key=lambda t: t["id"])

    def submit(self, task: int, result: list[dict[str, Any]], cancelled: bool = False) -> dict[str, Any]:
        """Submit an annotation of ``task`` as the annotator would (``cancelled``: skip the task)."""
        return self.request(
            "POST", f"/api/tasks/{task}/annotations", {"result": result, "was_cancelled": cancelled, "lead_time": 3.0}
        )

    def env(self) -> dict[str, str]:
        """The variables cvactive reads."""
        return {"LABEL_STUDIO_URL": self.url, "LABEL_STUDIO_API_KEY": self.token}


def _install() -> str | None:
    """Install Label Studio with ./dev.sh when it is missing; the reason it cannot be, or None."""
    if LABEL_STUDIO.exists():
        return None
    try:
        proc = subprocess.run(
            ["bash", str(REPO / "dev.sh"), "labelstudio", "install"],
            cwd=REPO, capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return "installing Label Studio took over 20 minutes"
    if proc.returncode != 0 or not LABEL_STUDIO.exists():
        return f"Label Studio could not be installed: {(proc.stderr or proc.stdout).strip()[-300:]}"
    return None


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_SHARED: list[Server] = []  # the session's server while some fixture holds it (a start costs 30-60 s)


@contextlib.contextmanager
def running_server(data_dir: Path) -> Iterator[Server]:
    """Start ``./dev.sh labelstudio`` on a free port with its data in ``data_dir``; stop it afterwards.

    A second caller while the first still holds it (two session fixtures) gets the same server
    (its data stays in the first caller's folder); the last one out stops it.
    """
    if _SHARED:
        _SHARED.append(_SHARED[0])
        try:
            yield _SHARED[0]
        finally:
            _SHARED.pop()
        return
    with _started(data_dir) as server:
        _SHARED.append(server)
        try:
            yield server
        finally:
            _SHARED.clear()


@contextlib.contextmanager
def _started(data_dir: Path) -> Iterator[Server]:
    reason = _install()
    if reason:
        pytest.skip(reason)
    if not _sdk_installed():  # FiftyOne's backend imports it
        pytest.skip("label-studio-sdk is not installed in the test environment: run ./dev.sh labelstudio install")
    port = _free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = Server(
        url=f"http://127.0.0.1:{port}",
        username="annotator@cvactive.test",
        password=secrets.token_hex(8),
        token=secrets.token_hex(20),
        log=data_dir / "server.log",
    )
    env = {
        **os.environ,
        "LABEL_STUDIO_PORT": str(port),
        "LABEL_STUDIO_DATA": str(data_dir),
        "LABEL_STUDIO_USERNAME": server.username,
        "LABEL_STUDIO_PASSWORD": server.password,
        "LABEL_STUDIO_API_KEY": server.token,
    }
    with server.log.open("w") as log:
        proc = subprocess.Popen(
            ["bash", str(REPO / "dev.sh"), "labelstudio"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        _wait(server, proc)
        yield server
    finally:
        _stop(proc)


def _sdk_installed() -> bool:
    from importlib import metadata

    try:
        metadata.version("label-studio-sdk")
    except metadata.PackageNotFoundError:
        return False
    return True


def _wait(server: Server, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Label Studio exited ({proc.returncode}): {server.log.read_text()[-1500:]}")
        try:
            server.request("GET", "/api/projects", params="?page_size=1")
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(1.0)
    raise RuntimeError(f"Label Studio did not answer within {START_TIMEOUT_S} s: {server.log.read_text()[-1500:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # the group this helper started: dev.sh exec'd label-studio
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
