"""A network guard for test subprocesses: put this folder on ``PYTHONPATH`` and set
``CVACTIVE_NET_GUARD_LOG`` to a file. Python imports ``sitecustomize`` at start-up, so every
attempt of the process to reach an address that is not loopback (``connect``, ``connect_ex``,
``sendto``, ``create_connection``, and the name look-ups ``getaddrinfo`` / ``gethostbyname``
that come first) is written to that file, one line each, and refused with ``ENETUNREACH``.
Loopback (127.0.0.0/8, ::1, ``localhost``) and Unix sockets pass: the FiftyOne database and App
live there. ``tests/test_offline.py`` uses it and checks that it catches a deliberate outside
connection.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from typing import Any

_LOG = os.environ.get("CVACTIVE_NET_GUARD_LOG", "")
_LOCAL_NAMES = {"", "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
_INET = (socket.AF_INET, socket.AF_INET6)


def _is_local(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("utf-8", "replace")
    text = str(host).strip("[]").split("%")[0]
    if text.lower() in _LOCAL_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False  # a name that is not loopback: looking it up is already a query out
    return ip.is_loopback or ip.is_unspecified


def _refuse(kind: str, target: Any) -> None:
    with open(_LOG, "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()} {kind} {target!r}\n")
    raise OSError(errno.ENETUNREACH, f"network guard: {kind} to {target!r} refused")


def _host(address: Any) -> Any:
    return address[0] if isinstance(address, tuple) and address else None


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_sendto = socket.socket.sendto
_getaddrinfo = socket.getaddrinfo
_gethostbyname = socket.gethostbyname
_create_connection = socket.create_connection


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if self.family in _INET and not _is_local(_host(address)):
        _refuse("connect", address)
    return _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if self.family in _INET and not _is_local(_host(address)):
        _refuse("connect_ex", address)
    return _connect_ex(self, address)


def _guarded_sendto(self: socket.socket, data: Any, *args: Any) -> int:
    if args and self.family in _INET and not _is_local(_host(args[-1])):
        _refuse("sendto", args[-1])
    return _sendto(self, data, *args)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_local(host):
        _refuse("getaddrinfo", host)
    return _getaddrinfo(host, *args, **kwargs)


def _guarded_gethostbyname(host: str) -> str:
    if not _is_local(host):
        _refuse("gethostbyname", host)
    return _gethostbyname(host)


def _guarded_create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
    if not _is_local(_host(address)):
        _refuse("create_connection", address)
    return _create_connection(address, *args, **kwargs)


if _LOG:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]
    socket.socket.sendto = _guarded_sendto  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = _guarded_getaddrinfo
    socket.gethostbyname = _guarded_gethostbyname
    socket.create_connection = _guarded_create_connection
