"""What the loop keeps between rounds (issue #22): linked images in the study folder, scored pools
keyed by the weights' hash, read back bit for bit; and the cores plan. Fast: no training here
(the slow loop tests in test_loop.py run the whole cycle with these)."""

import os
from typing import Any

import numpy as np
import pytest

from cvactive.loop.dataview import link_view
from cvactive.loop.scores import file_hash, load_scored, save_scored
from cvactive.record import ImageRecord
from cvactive.train import cpu_threads


def _record(source: str, rng: np.random.Generator, boxes: int) -> ImageRecord:
    xyxy = np.sort(rng.uniform(0, 100, (boxes, 4)).astype(np.float32), axis=1)
    return ImageRecord(
        source=source,
        width=640,
        height=512,
        xyxy=xyxy,
        confidence=rng.uniform(0, 1, boxes).astype(np.float32),
        class_id=rng.integers(0, 4, boxes),
        class_scores=rng.uniform(0, 1, (boxes, 4)).astype(np.float32),
        names={0: "Person", 1: "Car", 2: "Bicycle", 3: "OtherVehicle"},
        embedding=rng.normal(size=64).astype(np.float32),
        box_scores={"entropy": rng.uniform(0, 1, boxes), "margin": np.full(boxes, np.nan)},
        image_scores={"entropy_max": float(rng.uniform()), "count": float(boxes)},
    )


def test_a_scored_pool_is_read_back_bit_for_bit(tmp_path):
    rng = np.random.default_rng(0)
    records = [_record(f"/data/img{i}.jpg", rng, n) for i, n in enumerate([0, 1, 7])]
    records.append(ImageRecord.empty("/data/none.jpg", 3, 2))
    path = tmp_path / "scores" / "pool-x.jsonl"
    assert save_scored(path, records)
    back = load_scored(path)
    assert len(back) == len(records)
    for a, b in zip(records, back):
        assert (a.source, a.width, a.height, a.names, a.frame, a.timestamp) == (
            b.source, b.width, b.height, b.names, b.frame, b.timestamp
        )  # fmt: skip
        for name in ("xyxy", "confidence", "class_id", "class_scores", "embedding"):
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None) == (y is None)
            if x is not None:
                assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        assert a.box_scores.keys() == b.box_scores.keys()
        for key in a.box_scores:
            assert a.box_scores[key].tobytes() == b.box_scores[key].tobytes()
        assert a.image_scores == b.image_scores
    # A record carrying what the file does not keep is not cached at all (nothing half-written).
    records[0].extra["round"] = 3
    assert not save_scored(tmp_path / "other.jsonl", records)
    assert not (tmp_path / "other.jsonl").exists()


def test_linked_images_and_labels_live_in_the_study_folder(tmp_path):
    src = tmp_path / "user"
    for sub in ("a", "b"):
        (src / sub / "images").mkdir(parents=True)
        (src / sub / "labels").mkdir(parents=True)
        (src / sub / "images" / "x.jpg").write_bytes(b"jpeg " + sub.encode())
        (src / sub / "labels" / "x.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (src / "c.png").write_bytes(b"png")
    images = [src / "a" / "images" / "x.jpg", src / "b" / "images" / "x.jpg", src / "c.png"]
    labels = [src / "a" / "labels" / "x.txt", src / "b" / "labels" / "x.txt", None]
    before = sorted(p for p in src.rglob("*"))
    view = tmp_path / "study" / "dataset"
    links = link_view(view, "pool", images, labels)
    # Two images of one name get two links; each link is in the study folder and reads its image.
    assert len(set(links)) == 3 and all(p.parent == view / "images" / "pool" for p in links)
    assert [p.read_bytes() for p in links] == [p.read_bytes() for p in images]
    # Ultralytics' images -> labels rule finds the linked label; an image without labels has none.
    for link, label in zip(links, labels):
        linked_label = view / "labels" / "pool" / (link.stem + ".txt")
        assert linked_label.is_file() == (label is not None)
        if label is not None:
            assert linked_label.read_text() == label.read_text()
    # Linking again changes nothing (the same names: a .npy cache beside a link stays its image's).
    assert link_view(view, "pool", images, labels) == links
    assert sorted(p for p in src.rglob("*")) == before  # nothing written beside the user's files


def test_the_file_hash_changes_with_the_bytes(tmp_path):
    a = tmp_path / "w.pt"
    a.write_bytes(b"weights one")
    first = file_hash(a)
    assert first == file_hash(a) and len(first) == 64
    a.write_bytes(b"weights two")
    assert file_hash(a) != first


def test_training_on_the_cpu_takes_every_core_unless_told(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert cpu_threads(None, "cpu") == 6 and cpu_threads(3, "cpu") == 3
    assert cpu_threads(None, "0") is None  # a GPU: Ultralytics' choice


def test_the_study_scores_key_follows_the_weights_and_settings(tmp_path, porch_data):
    from cvactive.errors import ConfigError
    from cvactive.loop import LoopConfig
    from cvactive.loop.study import Study

    weights = tmp_path / "w.pt"
    weights.write_bytes(b"one")
    small: dict[str, Any] = {"model": "pico", "seeds": 1, "rounds": 1, "initial": 10, "budget": 10}
    study = Study(porch_data, tmp_path / "study", LoopConfig(**small))
    key = study.scores_key(str(weights))
    assert study.scores_path(str(weights)).parent == tmp_path / "study" / "scores"
    other = Study(porch_data, tmp_path / "study", LoopConfig(**small, imgsz=320))
    assert other.scores_key(str(weights)) != key  # another image size scores another pool
    weights.write_bytes(b"two")
    os.utime(weights, ns=(1, 1))
    assert study.scores_key(str(weights)) != key  # retrained in place: hashed again
    with pytest.raises(ConfigError, match="cache"):
        Study(porch_data, tmp_path / "study", LoopConfig(**small), cache="tmpfs")
