"""What a harvest's manifest keeps is what select and push use: the model runs on a frame once.

A real harvest (the COCO YOLOv8n rebuilt as PyTorch, with embeddings, on a real video) keeps
each frame's class scores, embedding and the model's full class names; a diversity selection
(k-center on the embeddings) and a push into FiftyOne then run on the manifest with the model's
forward pass counted: it does not run again, and push reads no image header.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cvactive.detect.model import Detector
from cvactive.io import load_jsonl, write_jsonl

pytestmark = pytest.mark.slow


def test_harvest_then_diversity_select_then_push_runs_the_model_once(assets: Path, pretrained_pt: Path, tmp_path,
                                                                      monkeypatch):  # fmt: skip
    from cvactive.harvest import harvest
    from cvactive.selection import select
    from cvactive.store import connect, resolve
    from cvactive.store.push import push_records

    calls: list[int] = []
    real_forward = Detector.forward
    monkeypatch.setattr(Detector, "forward", lambda self, im: calls.append(len(im)) or real_forward(self, im))
    detector = Detector(pretrained_pt, imgsz=320, embed=True)
    video = assets / "videos" / "slow_traffic_small.mp4"
    out = tmp_path / "harvest"
    summary = harvest(str(video), out, detector=detector, rules=[{"kind": "random", "every_n": 60}], stride=30,
                      budget={"total": 8}, annotate=True, progress=False, handle_signals=False)  # fmt: skip
    assert summary.kept == 8 and sum(calls) == 8  # each kept frame inferred once (annotate)

    records = load_jsonl(out / "manifest.jsonl")
    assert all(r.harvested is not None and r.harvested.rules == ("random",) for r in records)
    assert all(r.embedding is not None and r.embedding.shape == records[0].embedding.shape for r in records)
    assert all(r.class_scores is not None and r.class_scores.shape[1] == 80 for r in records if len(r))
    assert sum(len(r) for r in records) > 0 and all(len(r.names) == 80 for r in records)  # COCO's, in full
    assert "delay" not in {k for r in records for k in r.extra}  # nothing of the harvest is a pool field

    calls.clear()
    picks, utilities = select(records, 4, strategy="coreset", rng=0)
    chosen = [records[i] for i in picks]
    write_jsonl(tmp_path / "selected.jsonl", chosen, class_scores=True)
    chosen = load_jsonl(tmp_path / "selected.jsonl")
    assert [r.key for r in chosen] == [records[i].key for i in picks] and np.isfinite(utilities[1:]).all()
    headers: list[Any] = []
    monkeypatch.setattr(resolve, "jpeg_header", lambda path: headers.append(path))
    name = f"cva-stage-{uuid.uuid4().hex[:8]}"
    try:
        pushed = push_records(chosen, name, strategy="coreset", brain=False, progress=False)
        ds = connect().load_dataset(name)
        assert pushed.added == 4 and pushed.embedded == 4 and len(ds.exists("embedding")) == 4
        assert ds.first().metadata.width == 640 and ds.first().metadata.height == 360  # the record's size
        assert all(Path(p).is_relative_to(out / "frames") for p in ds.values("filepath"))  # the saved frames
    finally:
        connect().delete_datasets(name)
    assert calls == [] and headers == []  # no forward pass, no image header read after the harvest
