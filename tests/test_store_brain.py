"""Pushed embeddings reach FiftyOne Brain: similarity search, a 2-D map, uniqueness, all offline (slow)."""

from __future__ import annotations

import ipaddress
import socket
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from builders import yolo_records

pytestmark = pytest.mark.slow


@pytest.fixture
def no_internet(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Refuse (and record) every connection that is not to this machine, as a model download would make."""
    attempts: list[Any] = []
    real = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None:
            try:
                local = ipaddress.ip_address(host).is_loopback
            except ValueError:
                local = host == "localhost"
            if not local:
                attempts.append(address)
                raise OSError(f"test: no internet ({address})")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    return attempts


def test_push_with_embeddings_runs_brain_offline(porch_data: Path, no_internet: list[Any], capsys):
    from cvactive.store import connect
    from cvactive.store.brain import MAP_KEY, SIMILARITY_KEY, map_method
    from cvactive.store.push import push_records

    fo = connect()
    name = f"b-{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(3)
    records = yolo_records(porch_data, "val", rng)
    centres = rng.normal(size=(2, 32)) * 5
    for i, r in enumerate(records):  # two clusters of look-alikes
        r.embedding = (centres[i % 2] + rng.normal(size=32) * 0.1).astype(np.float32)
    try:
        summary = push_records(records, name, round_=1, review=True, progress=False)
        assert summary.embeddings == len(records) and summary.map_method == map_method(len(records))
        ds = fo.load_dataset(name)
        assert {SIMILARITY_KEY, MAP_KEY} <= set(ds.list_brain_runs())
        assert type(ds.get_brain_info(SIMILARITY_KEY).config).__name__ == "SklearnSimilarityConfig"
        assert ds.has_sample_field("uniqueness") and all(0 <= u <= 1 for u in ds.values("uniqueness"))
        first = ds.first()
        near = ds.sort_by_similarity(first.id, k=5, brain_key=SIMILARITY_KEY)
        cluster = {str(Path(r.source).resolve()): i % 2 for i, r in enumerate(records)}
        assert [cluster[s.filepath] for s in near] == [cluster[first.filepath]] * 5
        points = ds.load_brain_results(MAP_KEY).points
        assert points.shape == (len(records), 2)
        # a second push recomputes the runs in place
        push_records(records[:3], name, round_=2, review=True, progress=False)
        ds.reload()
        assert {SIMILARITY_KEY, MAP_KEY} <= set(ds.list_brain_runs())
        assert "uniqueness" in ds.app_config.sidebar_groups[1].paths  # in the review group, sortable
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)
    assert no_internet == []
