"""cvactive never writes into a FiftyOne database it was not pointed at (issue #25, item 4).

A plain ``import fiftyone`` joins whatever FiftyOne database service already runs, whatever
``FIFTYONE_DATABASE_DIR`` says, and a ``FIFTYONE_PRIVATE_DATABASE_PORT`` left in the environment
points at one folder's ``mongod``: :func:`cvactive.store.connect` then refuses with one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent

_OPEN = """
import sys
from cvactive.errors import StoreError
from cvactive.store import open_dataset
try:
    open_dataset(sys.argv[1])
except StoreError as err:
    print(err, file=sys.stderr)
    sys.exit(2)
print("created")
"""

_PLAIN_IMPORT_FIRST = """
import sys
import fiftyone as fo
fo.list_datasets()  # a user's script: FiftyOne connects on its own, to whichever service runs
from cvactive.errors import StoreError
from cvactive.store import connect, open_dataset
try:
    connect()
    open_dataset(sys.argv[1])
except StoreError as err:
    print(err, file=sys.stderr)
    sys.exit(2)
print("created")
"""


def _env(other: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "FIFTYONE_PRIVATE_DATABASE_PORT"}
    env.update(FIFTYONE_DATABASE_DIR=str(other), **extra)
    return env


def test_a_port_of_another_folders_database_is_refused(tmp_path: Path):
    from cvactive.store import connect

    fo = connect()  # this session's database runs
    port = os.environ["FIFTYONE_PRIVATE_DATABASE_PORT"]
    name = f"guard-{uuid.uuid4().hex[:6]}"
    env = _env(tmp_path / "other-db", FIFTYONE_PRIVATE_DATABASE_PORT=port)
    run = subprocess.run([sys.executable, "-c", _OPEN, name], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=180)  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "not FIFTYONE_DATABASE_DIR=" in lines[0], run.stderr
    assert f"on port {port}" in lines[0] and "does not write into it" in lines[0]
    assert not fo.dataset_exists(name)  # nothing written into this session's database


def test_a_database_fiftyone_joined_on_its_own_is_refused(tmp_path: Path):
    from cvactive.store import connect

    fo = connect()  # a database service of another folder runs on this machine
    name = f"guard-{uuid.uuid4().hex[:6]}"
    env = _env(tmp_path / "other-db")
    run = subprocess.run([sys.executable, "-c", _PLAIN_IMPORT_FIRST, name], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=180)  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "not FIFTYONE_DATABASE_DIR=" in lines[0], run.stderr
    assert "connect() before any other FiftyOne call" in lines[0]
    assert not fo.dataset_exists(name)
