"""A Label Studio server on this machine, started the way a user starts one, stopped on every exit path.

The one implementation behind ``./dev.sh labelstudio`` (which runs :func:`main` in the foreground),
the porch demo's real round and the test suite's server (:func:`running_server`): Label Studio from
its own environment (``.venv-labelstudio``: its pins clash with cvactive's; ``./dev.sh labelstudio
install`` puts it there), on loopback only, with its SQLite database in a folder of the caller's, a
user and a legacy API token created non-interactively from the environment, and everything that
would reach outside switched off (the version check against the package registry, Sentry error and
trace reports, usage analytics), so the server works offline.

The token and the password travel to the server in its environment only: nothing here prints them
or writes them to a file (the server keeps its token in its own database, as every Label Studio does).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 600  # a first start builds the database: 25 s on an idle machine, over 4 minutes under load
DEFAULT_USER = "annotator@localhost"

#: what keeps Label Studio from reaching outside (read by its settings; the prefix is its own)
OFFLINE_ENV = {
    "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",  # else it asks the package registry at every start
    "LABEL_STUDIO_SENTRY_DSN": "",  # else errors and 2 % of requests' traces go to sentry.io
    "LABEL_STUDIO_FRONTEND_SENTRY_DSN": "",  # the same from the web page
    "LABEL_STUDIO_COLLECT_ANALYTICS": "false",  # else usage events go to tele.labelstud.io
    "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
}


def home() -> Path:
    """The folder that holds cvactive's environment (the checkout, where ``./dev.sh`` made ``.venv``)."""
    return Path(sys.prefix).resolve().parent


def ls_venv() -> Path:
    """Label Studio's own environment: ``$LABEL_STUDIO_VENV``, else ``.venv-labelstudio`` beside cvactive's."""
    return Path(os.environ.get("LABEL_STUDIO_VENV") or home() / ".venv-labelstudio")


def executable() -> Path | None:
    """Label Studio's command in its own environment, or None when it is not installed."""
    path = ls_venv() / "bin" / "label-studio"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def version() -> str | None:
    """The installed Label Studio release, or None."""
    python = ls_venv() / "bin" / "python"
    if not python.is_file():
        return None
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('label-studio'))"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def install(*, quiet: bool = True) -> str | None:
    """Install Label Studio (and FiftyOne's SDK) with ``./dev.sh labelstudio install`` when either is missing.

    Returns:
        None when both are there (now), else why they are not (one line).
    """
    if executable() is not None and sdk_installed():
        return None
    dev = home() / "dev.sh"
    if not dev.is_file():
        return (
            f"Label Studio is not installed in {ls_venv()} and there is no {dev} to install it (docs/annotate.md: "
            "pip install label-studio into an environment of its own, named by LABEL_STUDIO_VENV)"
        )
    try:
        done = subprocess.run(
            ["bash", str(dev), "labelstudio", "install"], cwd=dev.parent, timeout=1200, check=False,
            capture_output=quiet, text=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return "installing Label Studio took over 20 minutes"
    if done.returncode != 0 or executable() is None or not sdk_installed():
        tail = ((done.stderr or done.stdout or "") if quiet else "").strip().replace("\n", " ")[-300:]
        return f"Label Studio could not be installed (./dev.sh labelstudio install, exit {done.returncode}) {tail}"
    return None


def sdk_installed() -> bool:
    """Whether ``label-studio-sdk`` (which FiftyOne's backend imports) is in cvactive's environment."""
    from importlib import metadata

    try:
        metadata.version("label-studio-sdk")
    except metadata.PackageNotFoundError:
        return False
    return True


@dataclass
class Server:
    """A running Label Studio: its URL, the user's e-mail, password and legacy API token (never shown)."""

    url: str
    username: str
    password: str = field(repr=False)
    token: str = field(repr=False)
    log: Path
    pid: int = 0

    def request(self, method: str, path: str, body: Any = None, params: str = "") -> Any:
        """One call of Label Studio's HTTP API as this user; the decoded JSON answer."""
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


def server_env(port: int, data_dir: Path, username: str, password: str, token: str) -> dict[str, str]:
    """The environment Label Studio starts with: the user to create, its token, its data, offline."""
    return {
        "LABEL_STUDIO_USERNAME": username,
        "LABEL_STUDIO_PASSWORD": password,
        "LABEL_STUDIO_USER_TOKEN": token,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_PORT": str(port),
        **OFFLINE_ENV,
    }


def server_command(exe: Path, port: int, data_dir: Path) -> list[str]:
    """``label-studio start`` on 127.0.0.1:``port`` with its SQLite database in ``data_dir``."""
    url = f"http://127.0.0.1:{port}"
    return [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port), "--host", url,
            "--data-dir", str(data_dir), "--enable-legacy-api-token"]  # fmt: skip


def free_port() -> int:
    """A loopback port nobody listens on now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(
    data_dir: Path,
    *,
    port: int | None = None,
    username: str = DEFAULT_USER,
    timeout: float = START_TIMEOUT_S,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Start Label Studio on loopback (a free port unless given) with its data in ``data_dir``, a user and a
    fresh token; yield it once it answers; stop it on the way out, whatever the way (an exception, Ctrl-C,
    SIGTERM, which this turns into ``SystemExit`` meanwhile; if this process is killed outright the server gets
    SIGTERM from the kernel).

    Raises:
        FileNotFoundError: Label Studio is not installed (:func:`install`).
        RuntimeError: it exited or did not answer within ``timeout`` seconds (the log's tail in the message).
    """
    exe = executable()
    if exe is None:
        raise FileNotFoundError(f"Label Studio is not installed in {ls_venv()} (./dev.sh labelstudio install)")
    port = port or free_port()
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = Server(
        url=f"http://127.0.0.1:{port}", username=username, password=secrets.token_hex(12),
        token=secrets.token_hex(20), log=data_dir / "server.log",
    )  # fmt: skip
    env = {**os.environ, **(extra_env or {}), **server_env(port, data_dir, username, server.password, server.token)}
    for key in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"):  # cvactive's variables, not the server's
        env.pop(key, None)
    with _sigterm_as_exit(), server.log.open("a") as log:
        proc = subprocess.Popen(
            server_command(exe, port, data_dir), cwd=data_dir, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent(),
        )  # fmt: skip
        server.pid = proc.pid
        try:
            _wait(server, proc, timeout)
            yield server
        finally:
            stop(proc)


def _die_with_parent() -> Callable[[], None] | None:
    """For the child, before exec: SIGTERM when the process that started it dies (Linux; looked up here, as a
    forked child of a threaded process must not load libraries)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM raises ``SystemExit`` meanwhile (so the ``finally`` that stops the server runs); main thread only."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    before = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _wait(server: Server, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Label Studio exited ({proc.returncode}): {_tail(server.log)}")
        try:
            server.request("GET", "/api/projects", params="?page_size=1")
            return
        except urllib.error.HTTPError as refused:
            if refused.code in (401, 403):  # up, but the user was there before with another token
                raise RuntimeError(
                    f"Label Studio refused the new token: the user {server.username} exists in {server.log.parent} "
                    "with a token of its own (take a new data folder or user name)"
                ) from None
            time.sleep(1.0)
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(1.0)
    raise RuntimeError(f"Label Studio did not answer within {timeout:.0f} s: {_tail(server.log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-1500:] if log.is_file() else "(no log)"


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group (SIGTERM, then SIGKILL after 30 s)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and whatever it started
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def main() -> None:
    """``./dev.sh labelstudio``: Label Studio in the foreground (Ctrl-C stops it), settings from the environment:
    ``LABEL_STUDIO_API_KEY`` (the token to create) and ``LABEL_STUDIO_PASSWORD`` (required),
    ``LABEL_STUDIO_USERNAME``, ``LABEL_STUDIO_PORT`` (8080), ``LABEL_STUDIO_DATA`` (``.cache/labelstudio``)."""
    exe = executable()
    token, password = os.environ.get("LABEL_STUDIO_API_KEY", ""), os.environ.get("LABEL_STUDIO_PASSWORD", "")
    if exe is None or not token or not password:
        print(
            "set LABEL_STUDIO_API_KEY to the token to create (e.g. export LABEL_STUDIO_API_KEY=$(openssl rand -hex "
            "20)) and LABEL_STUDIO_PASSWORD to the password of the user to create (for the web UI)"
            if not token or not password else f"Label Studio is not installed in {ls_venv()}: run ./dev.sh labelstudio "
            "install",
            file=sys.stderr,
        )  # fmt: skip
        raise SystemExit(2)
    port = int(os.environ.get("LABEL_STUDIO_PORT") or 8080)
    data = Path(os.environ.get("LABEL_STUDIO_DATA") or ".cache/labelstudio").resolve()
    user = os.environ.get("LABEL_STUDIO_USERNAME") or DEFAULT_USER
    data.mkdir(parents=True, exist_ok=True)
    print(f"== Label Studio on http://127.0.0.1:{port} (data: {data}; user {user})")
    print(
        f"   export LABEL_STUDIO_URL=http://127.0.0.1:{port}  (cvactive reads it and LABEL_STUDIO_API_KEY)", flush=True
    )
    env = {**os.environ, **server_env(port, data, user, password, token)}
    os.execve(str(exe), server_command(exe, port, data), env)


if __name__ == "__main__":
    main()
