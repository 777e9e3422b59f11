"""A short lease lock in the database itself, for the few data-set-wide writes FiftyOne does unguarded.

FiftyOne saves a data set's document (its field schema, saved views, App config, ``info``) by
overwriting whole lists: two processes that add a field, save a view or append an evaluation
round at the same moment can lose one of the two changes. cvactive takes this lock around
those writes (re-reading the data set inside it). It lives in the MongoDB that holds the data
(a ``cvactive_locks`` collection), so it serialises processes on several machines sharing one
server as well as on one machine. A lock whose holder died expires after ``ttl_s``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from cvactive.errors import StoreError

COLLECTION = "cvactive_locks"


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@contextlib.contextmanager
def dataset_lock(dataset: Any, what: str = "schema", *, timeout_s: float = 60.0, ttl_s: float = 60.0) -> Iterator[None]:
    """Hold the lock ``<data set id>:<what>`` while the block runs.

    Raises:
        StoreError: another holder kept it longer than ``timeout_s``.
    """
    import fiftyone.core.odm.database as fodb
    from pymongo.errors import DuplicateKeyError

    coll = fodb.get_db_conn()[COLLECTION]
    key = f"{dataset._doc.id}:{what}"
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            coll.insert_one({"_id": key, "owner": owner, "expires": _now() + timedelta(seconds=ttl_s)})
            break
        except DuplicateKeyError:
            coll.delete_one({"_id": key, "expires": {"$lt": _now()}})  # a dead holder's lease
            if time.monotonic() > deadline:
                holder = (coll.find_one({"_id": key}) or {}).get("owner", "?")
                raise StoreError(
                    f"data set {dataset.name!r} has been locked ({what}) by {holder} for over {timeout_s:g} s; "
                    f"retry, or delete the document {key!r} of the {COLLECTION} collection if that process is gone"
                ) from None
            time.sleep(0.05)
    try:
        yield
    finally:
        coll.delete_one({"_id": key, "owner": owner})
