"""The Label Studio server's start-up settings (fast): offline, on loopback, the token kept out of sight.

The server itself runs in the slow tests (``tests/labelstudio.py`` starts one per session with
:func:`cvactive.store.labelstudio_server.running_server` under the network guard).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cvactive.store.labelstudio_server import OFFLINE_ENV, Server, server_command, server_env


def test_the_server_starts_on_loopback_offline_with_the_user_and_token_from_the_environment(tmp_path: Path):
    env = server_env(8123, tmp_path, "a@localhost", "pw-secret", "tok-secret-123456")
    assert env["LABEL_STUDIO_USER_TOKEN"] == "tok-secret-123456" and env["LABEL_STUDIO_USERNAME"] == "a@localhost"
    assert env["LABEL_STUDIO_LATEST_VERSION_CHECK"] == "false" and env["LABEL_STUDIO_COLLECT_ANALYTICS"] == "false"
    assert env["LABEL_STUDIO_SENTRY_DSN"] == "" and env["LABEL_STUDIO_FRONTEND_SENTRY_DSN"] == ""
    assert set(OFFLINE_ENV) <= set(env)
    cmd = server_command(Path("/x/label-studio"), 8123, tmp_path)
    assert cmd[cmd.index("--internal-host") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "8123"
    assert "tok-secret-123456" not in " ".join(cmd)  # the command line is visible to every user of the machine
    server = Server("http://127.0.0.1:8123", "a@localhost", "pw-secret", "tok-secret-123456", tmp_path / "log")
    assert "secret" not in repr(server) and server.env()["LABEL_STUDIO_API_KEY"] == "tok-secret-123456"


def test_labelstudio_without_a_token_or_password_is_one_line(tmp_path: Path):
    """``./dev.sh labelstudio`` (``python -m cvactive.store.labelstudio_server``) with a variable missing: exit 2,
    one line saying what to set, nothing started or written."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO")}
    env["LABEL_STUDIO_DATA"] = str(tmp_path / "data")
    for extra in ({}, {"LABEL_STUDIO_API_KEY": "0123456789abcdef"}):
        done = subprocess.run(
            [sys.executable, "-m", "cvactive.store.labelstudio_server"], env={**env, **extra}, capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert done.stderr.count("\n") == 1 and "LABEL_STUDIO_PASSWORD" in done.stderr
    assert not (tmp_path / "data").exists()
