"""Starting FiftyOne's bundled ``mongod`` once per database folder, however many processes ask at once.

FiftyOne starts its bundled ``mongod`` through a small service process
(``fiftyone/service/main.py --51-service db --multi``) and lets later processes register with a
running one. Two processes that start at the same moment both find none, both start one on
the same folder, and the loser fails after a minute with ``ServiceListenTimeout``. FiftyOne
also attaches to *any* running database service of the user, whatever its
``FIFTYONE_DATABASE_DIR``.

:func:`ensure_local_service` fixes both for cvactive's processes: under an exclusive file lock
in the database folder it looks for the service of *this* folder (its command line carries
``--dbpath <folder>``), registers with it when there is one, and otherwise starts one; the lock
is held until the new ``mongod`` listens, so a second process waits and then joins it. The port
goes into ``FIFTYONE_PRIVATE_DATABASE_PORT``, which FiftyOne's connection code uses as is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cvactive.errors import StoreError

log = logging.getLogger(__name__)

#: The lock file, inside the database folder.
LOCK_NAME = ".cvactive-start.lock"
#: Seconds to wait for another process's start (the lock) and for a ``mongod`` to listen.
START_TIMEOUT_S = 120.0
_SERVICE_ARGS = ["--51-service", "db", "--multi"]


@contextlib.contextmanager
def folder_lock(folder: Path, timeout_s: float = START_TIMEOUT_S) -> Iterator[None]:
    """An exclusive ``flock`` on ``folder/.cvactive-start.lock`` (created), waited for up to ``timeout_s``.

    Raises:
        StoreError: the folder cannot be written, or another process held the lock too long.
    """
    import fcntl

    try:
        folder.mkdir(parents=True, exist_ok=True)
        fh = (folder / LOCK_NAME).open("a+")
    except OSError as err:
        raise StoreError(f"cannot write to FiftyOne's database folder {folder} ({err}); fix its permissions") from err
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"another process has been starting the database in {folder} for over {timeout_s:g} s; "
                        f"check it, or remove {folder / LOCK_NAME} if no cvactive process runs"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        fh.close()  # closing releases the lock


def _dbpath(cmdline: list[str]) -> str | None:
    for i, arg in enumerate(cmdline[:-1]):
        if arg == "--dbpath":
            return os.path.realpath(cmdline[i + 1])
    return None


def find_service(folder: Path) -> Any | None:
    """The running FiftyOne database service process whose ``mongod`` uses ``folder``, or ``None``."""
    import fiftyone.service.util as fosu

    want = os.path.realpath(folder)
    for proc in fosu.find_processes_by_args(_SERVICE_ARGS):
        try:
            if _dbpath(proc.cmdline()) == want:
                return proc
        except Exception:  # gone meanwhile
            continue
    return None


def _listening_port(service: Any, timeout_s: float) -> int:
    import fiftyone.service.util as fosu
    import psutil

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            for child in fosu.normalize_wrapper_process(service).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    ports = list(fosu.get_listening_tcp_ports(child))
                    if ports:
                        return int(ports[0])
        except psutil.NoSuchProcess as err:
            raise StoreError(f"FiftyOne's database service (pid {service.pid}) exited while starting") from err
        if time.monotonic() > deadline:
            raise StoreError(
                f"FiftyOne's database service (pid {service.pid}) has no listening mongod after {timeout_s:g} s; "
                "see the mongo.log in its database folder"
            )
        time.sleep(0.25)


def _attach(service: Any) -> int:
    """Register this process with a running service (so it outlives our use) and return its port."""
    import fiftyone.service.util as fosu

    try:
        reply = fosu.send_ipc_message(service, ("register", os.getpid()))
    except OSError as err:
        raise StoreError(f"FiftyOne's database service (pid {service.pid}) did not answer: {err}") from err
    if reply is not True:
        raise StoreError(f"FiftyOne's database service (pid {service.pid}) refused to register us: {reply!r}")
    return _listening_port(service, START_TIMEOUT_S)


def _start() -> tuple[Any, int]:
    """Start a new database service for the configured folder (never attaching to another folder's)."""
    import fiftyone.core.service as fos

    service = object.__new__(fos.DatabaseService)
    service._system = os.system
    service._disabled = False
    service.child = None
    service.attached = False
    fos.Service.start(service)  # the plain start: MultiClientService.start would join any folder's service
    return service, _listening_port(service.child, START_TIMEOUT_S)


def ensure_local_service(folder: str | os.PathLike[str]) -> int | None:
    """Make sure the bundled ``mongod`` of ``folder`` runs and this process may use it; return its port.

    Does nothing (returns ``None``) when FiftyOne already knows its port in this process (the
    ``FIFTYONE_PRIVATE_DATABASE_PORT`` a parent process handed down).

    Raises:
        StoreError: the service cannot be started or joined within :data:`START_TIMEOUT_S`.
    """
    import fiftyone.core.odm.database as fodb

    if os.environ.get("FIFTYONE_PRIVATE_DATABASE_PORT") or fodb._db_service is not None:
        return None
    path = Path(os.path.expanduser(str(folder)))
    with folder_lock(path):
        running = find_service(path)
        if running is not None:
            port = _attach(running)
            log.debug("joined FiftyOne's database service (pid %d) of %s on port %d", running.pid, path, port)
        else:
            service, port = _start()
            fodb._db_service = service  # FiftyOne's handle: stopping it lets the service exit with its clients
            log.debug("started FiftyOne's database service for %s on port %d", path, port)
        os.environ["FIFTYONE_PRIVATE_DATABASE_PORT"] = str(port)
    return port
