"""The test session's Label Studio server: :func:`cvactive.store.labelstudio_server.running_server`, the one
implementation behind ``./dev.sh labelstudio`` and the demo's real round.

One server per test session (a start takes about half a minute to a minute), on a free loopback port,
with its SQLite database under the session's temporary folder and a user, password and token made up
for the session. Label Studio is installed by ``./dev.sh labelstudio install`` when it is missing
(``./dev.sh test`` installs it before pytest); the tests that need it skip with the reason only when
it cannot be installed. The server runs under ``tests/netguard``: every attempt it makes to reach an
address that is not loopback is written to :attr:`Server.net_log` (and refused), and the tests check
that file stays empty. Annotators' work is submitted through Label Studio's HTTP API, as its front end does.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cvactive.store.labelstudio_server import Server, install
from cvactive.store.labelstudio_server import running_server as _running_server

REPO = Path(__file__).resolve().parent.parent
GUARD = Path(__file__).parent / "netguard"

__all__ = ["REPO", "Server", "net_attempts", "running_server"]

_SHARED: list[Server] = []  # the session's server while some fixture holds it (a start costs 30-60 s)


def net_attempts(server: Server) -> list[str]:
    """What the server tried to reach outside loopback so far (the guard's log), one line each."""
    log = server.log.with_name("net-guard.log")
    return log.read_text().splitlines() if log.is_file() else []


@contextlib.contextmanager
def running_server(data_dir: Path) -> Iterator[Server]:
    """The session's server, started on a free port with its data in ``data_dir``; stopped by the last holder.

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
    reason = install()
    if reason:
        pytest.skip(reason)
    data_dir.mkdir(parents=True, exist_ok=True)
    guard = {
        "PYTHONPATH": os.pathsep.join([str(GUARD), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "CVACTIVE_NET_GUARD_LOG": str(data_dir / "net-guard.log"),
    }
    with _running_server(data_dir, username="annotator@cvactive.test", extra_env=guard) as server:
        _SHARED.append(server)
        try:
            yield server
        finally:
            _SHARED.clear()
