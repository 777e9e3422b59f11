"""Fast tests of the FiftyOne adapter's pure parts (no database) and of the database probe."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cvactive.boxes import xyxy_to_fiftyone, xyxy_to_yolo, yolo_to_fiftyone
from cvactive.errors import StoreError
from cvactive.record import Selection
from cvactive.store import probe_uri
from cvactive.store.eval_history import ap_drops, merge_history, plot_history, previous_round
from cvactive.store.evaluate import ap_per_iou
from cvactive.store.export import assign_splits
from cvactive.store.labels import coco_to_tlwh
from cvactive.store.merge import carry_reviews, keep_unmatched
from cvactive.store.provenance import ProvenanceIndex, provenance_fields
from cvactive.store.review import free_port, label_tag_counts, port_free, split_reviewed
from cvactive.store.tags import chosen_for_review, merge_tags, record_tags


def test_box_conventions_agree():
    xyxy = np.array([[10, 20, 50, 80], [0, 0, 100, 50]], np.float32)
    tlwh = xyxy_to_fiftyone(xyxy, 100, 200)
    np.testing.assert_allclose(tlwh, [[0.1, 0.1, 0.4, 0.3], [0.0, 0.0, 1.0, 0.25]])
    # YOLO centre boxes of the same pixels give the same FiftyOne boxes
    np.testing.assert_allclose(yolo_to_fiftyone(xyxy_to_yolo(xyxy, 100, 200)), tlwh, atol=1e-6)
    # COCO pixel x, y, w, h too
    np.testing.assert_allclose(coco_to_tlwh([10, 20, 40, 60], 100, 200), tlwh[0])


def test_boxes_outside_the_image_are_clipped():
    tlwh = xyxy_to_fiftyone(np.array([[-10, -10, 120, 30]]), 100, 100)
    np.testing.assert_allclose(tlwh, [[0.0, 0.0, 1.0, 0.3]])
    assert xyxy_to_fiftyone(np.zeros((0, 4)), 10, 10).shape == (0, 4)


def test_record_tags_from_round_rules_and_strategy():
    tags = record_tags({"round": 3}, strategy="top k", rules=("confidence_band", "random"))
    assert tags == ["round-3", "rule:confidence_band", "rule:random", "strategy:top-k", "to-review"]
    # an explicit round wins over the record's; the selection's strategy is used when none is given
    picked = Selection(rank=1, utility=0.5, strategy="kcenter")
    assert record_tags({"round": 3}, round_=4, selection=picked) == ["round-4", "strategy:kcenter", "to-review"]
    assert record_tags({}, strategy="hybrid", selection=picked) == ["strategy:hybrid", "to-review"]
    assert "synthetic" in record_tags({"provenance": {"recipe": "darken"}})
    assert record_tags({}) == ["to-review"]


def test_merge_tags_keeps_reviewer_tags():
    assert merge_tags(["approved", "round-1"], ["round-2", "to-review"]) == [
        "approved",
        "round-1",
        "round-2",
        "to-review",
    ]
    assert merge_tags(None, ["a"]) == ["a"]


def test_provenance_index_finds_lines_beside_the_dataset_root(tmp_path: Path):
    img = tmp_path / "synth" / "images" / "train" / "a.jpg"
    img.parent.mkdir(parents=True)
    img.write_bytes(b"x")
    lines = [
        {"image": str(img), "parent": "/data/p.jpg", "recipe": "darken", "params": {"gamma": 2.0}, "seed": 1},
        "not json",
    ]
    (tmp_path / "synth" / "provenance.jsonl").write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    )
    index = ProvenanceIndex()
    entry = index.lookup(img)
    assert entry is not None and entry["recipe"] == "darken"
    assert provenance_fields(entry) == {
        "synthetic_parent": "/data/p.jpg",
        "synthetic_recipe": "darken",
        "synthetic_params": {"gamma": 2.0},
    }
    other = tmp_path / "synth" / "images" / "train" / "b.jpg"
    assert index.lookup(other) is None


def test_ap_per_iou_matches_coco_averaging():
    # 2 IoU thresholds x 3 classes x 4 recall points; class 2 has no ground truth (-1)
    p = np.array(
        [
            [[1, 1, 0.5, 0.5], [0, 0, 0, 0], [-1, -1, -1, -1]],
            [[1, 0.5, 0, 0], [1, 1, 1, 1], [-1, -1, -1, -1]],
        ],
        float,
    )
    ap = ap_per_iou(p)
    np.testing.assert_allclose(ap, [[0.75, 0.0, -1.0], [0.375, 1.0, -1.0]])
    # the same as FiftyOne's classwise AP (mean over IoU and recall) for classes with ground truth
    np.testing.assert_allclose(ap[:, :2].mean(axis=0), p[:, :2].mean(axis=(0, 2)))
    with pytest.raises(ValueError, match="T, K, R"):
        ap_per_iou(np.zeros((2, 2)))


def test_ap_drop_warnings_and_history():
    r1 = {"round": 1, "per_class": {"a": {"ap": 0.6, "ap50": 0.8}, "b": {"ap": 0.5, "ap50": 0.7}}, "map": 0.55}
    r2 = {"round": 2, "per_class": {"a": {"ap": 0.5, "ap50": 0.8}, "b": {"ap": 0.48, "ap50": 0.7}}, "map": 0.49}
    warnings = ap_drops(r1["per_class"], r2["per_class"], 0.05)
    assert len(warnings) == 1 and "'a'" in warnings[0] and "0.600" in warnings[0]
    assert ap_drops(r1["per_class"], {"a": {"ap": None}}, 0.05) == []
    history = merge_history([r1], r2)
    assert [h["round"] for h in history] == [1, 2]
    again = merge_history(history, {**r1, "map": 0.1})
    assert [h["map"] for h in again] == [0.1, 0.49]
    assert previous_round(history, 2) is r1 and previous_round(history, 1) is None


def test_plot_history_writes_a_png(tmp_path: Path):
    history = [
        {"round": 1, "per_class": {"a": {"ap": 0.2, "ap50": 0.4}, "b": {"ap": None, "ap50": None}}, "map": 0.2},
        {"round": 2, "per_class": {"a": {"ap": 0.3, "ap50": 0.5}, "b": {"ap": 0.1, "ap50": 0.2}}, "map": 0.2},
    ]
    out = plot_history(history, tmp_path / "ap.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(StoreError, match="no evaluation rounds"):
        plot_history([], tmp_path / "none.png")


def test_assign_splits_by_tag_and_seeded_holdout():
    ids = [f"s{i}" for i in range(10)]
    tagged = assign_splits(ids, [["train"]] * 5 + [["val"]] * 3 + [[]] * 2)
    assert len(tagged["train"]) == 7 and len(tagged["val"]) == 3
    a = assign_splits(ids, [[]] * 10, val_fraction=0.3, rng=1)
    b = assign_splits(ids, [[]] * 10, val_fraction=0.3, rng=1)
    assert a == b and len(a["val"]) == 3 and not set(a["val"]) & set(a["train"])
    with pytest.raises(StoreError, match="too few"):
        assign_splits(["x"], [[]])
    with pytest.raises(StoreError, match="untagged split"):
        assign_splits(ids, [[]] * 10, untagged="holdout")


def test_split_reviewed_drops_fp_wrong_class_and_unseen_boxes():
    dets = [
        SimpleNamespace(tags=[], label="a", confidence=0.9),
        SimpleNamespace(tags=["fp"], label="a", confidence=0.8),
        SimpleNamespace(tags=["wrong-class"], label="b", confidence=0.7),
        SimpleNamespace(tags=["missed"], label="b", confidence=None),
        SimpleNamespace(tags=[], label="c", confidence=0.01),
    ]
    kept, fp, wrong, missed, low = split_reviewed(dets, min_conf=0.25)
    assert [d.label for d in kept] == ["a", "b"] and (fp, wrong, missed, low) == (1, 1, True, 1)
    assert label_tag_counts(dets, [SimpleNamespace(tags=["fp"])]) == {"fp": 2, "missed": 1, "wrong-class": 1}


def _box(label: str, x: float, tags: list[str] | None = None, oid: str | None = None) -> dict:
    return {"label": label, "bounding_box": [x, 0.1, 0.2, 0.2], "tags": tags or [], "_id": oid}


def test_carry_reviews_moves_tags_to_matching_boxes_and_keeps_the_rest():
    old = [_box("car", 0.10, ["fp"], "a"), _box("car", 0.60, ["wrong-class"], "b"), _box("dog", 0.30, ["fp"], "c")]
    new = [_box("car", 0.11), _box("car", 0.40), _box("cat", 0.30), _box("car", 0.61)]
    merged, unmatched = carry_reviews(old, new)
    assert [(d["tags"], d["_id"]) for d in merged] == [(["fp"], "a"), ([], None), ([], None), (["wrong-class"], "b")]
    assert [u["_id"] for u in unmatched] == ["c"]  # the dog became a cat: no same-label match
    # a box moved beyond the IoU threshold is not the same box
    _, unmatched = carry_reviews([_box("car", 0.10, ["fp"], "a")], [_box("car", 0.25)])
    assert [u["_id"] for u in unmatched] == ["a"]
    # each reviewed box lends its tags to one new box only
    merged, _ = carry_reviews([_box("car", 0.10, ["fp"], "a")], [_box("car", 0.10), _box("car", 0.105)])
    assert sum(bool(d["tags"]) for d in merged) == 1
    assert keep_unmatched([_box("car", 0.1, ["fp"], "a")], [_box("car", 0.2, ["missed"], "a")])[0]["tags"] == ["missed"]


def test_only_records_chosen_for_review_enter_the_queue_by_default():
    picked = Selection(rank=3, utility=0.2, strategy="uncertainty")
    assert chosen_for_review(rules=("random",)) and chosen_for_review(selection=picked)
    assert chosen_for_review(strategy="hybrid") and not chosen_for_review()
    assert record_tags({}, selection=picked, review=False) == ["strategy:uncertainty"]


def test_port_helpers():
    port = free_port()
    assert port_free(port)


def test_unreachable_database_uri_is_a_clear_error_within_seconds():
    start = time.monotonic()
    with pytest.raises(StoreError, match=r"cannot reach the MongoDB server .*127\.0\.0\.1:1"):
        probe_uri("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=1500")
    assert time.monotonic() - start < 10
    with pytest.raises(StoreError, match="not a valid MongoDB URI"):
        probe_uri("http://nope")


def test_password_is_not_printed():
    with pytest.raises(StoreError) as info:
        probe_uri("mongodb://user:s3cret@127.0.0.1:1/?serverSelectionTimeoutMS=500")
    assert "s3cret" not in str(info.value)


def test_extract_frames_reads_exact_frames(tmp_path: Path):
    import cv2

    from cvactive.store.resolve import extract_frames

    video = tmp_path / "v.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))  # type: ignore[attr-defined]
    for i in range(12):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    out = extract_frames(str(video), [7, 2, 2, 30], tmp_path / "frames")
    assert sorted(out) == [2, 7]  # frame 30 is past the end
    for frame, path in out.items():
        assert abs(float(cv2.imread(str(path)).mean()) - frame * 20) < 6
    # kept frames are reused, not re-read
    mtime = out[2].stat().st_mtime_ns
    assert extract_frames(str(video), [2], tmp_path / "frames")[2].stat().st_mtime_ns == mtime


def test_importing_the_adapter_and_its_commands_loads_no_heavy_library():
    import subprocess
    import sys

    code = (
        "import sys, cvactive.store.push, cvactive.store.evaluate, cvactive.store.review, cvactive.store.labels, "
        "cvactive.store.export, cvactive.store.brain, cvactive.store.read, cvactive.store.queue, "
        "cvactive.health.table, cvactive.cli.fo_push, cvactive.cli.fo_pull, cvactive.cli.fo_review, "
        "cvactive.cli.fo_import, cvactive.cli.fo_export, cvactive.cli.fo_evaluate; "
        "print(sorted(m for m in ('fiftyone', 'torch', 'ultralytics', 'cv2', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_registers_the_fiftyone_commands():
    from cvactive.cli import build_parser

    parser = build_parser()
    for argv in (
        ["push", "s.jsonl", "--dataset", "d", "--round", "2"],
        ["review", "--dataset", "d", "--port", "5199"],
        ["pull", "--dataset", "d", "--out", "o"],
        ["import", "data.yaml", "--dataset", "d"],
        ["export", "--dataset", "d", "--out", "o"],
        ["evaluate", "--dataset", "d", "--pred", "p", "--gt", "g", "--round", "1"],
    ):
        args = parser.parse_args(argv)
        assert callable(args.func) and args.command == argv[0]


def test_evaluate_config_keys_are_keyword_arguments():
    from cvactive._config import CONFIG_DIR, load_yaml
    from cvactive.config import check_kwargs
    from cvactive.store.evaluate import evaluate_round

    options = check_kwargs(evaluate_round, load_yaml(CONFIG_DIR / "evaluate.yaml"))
    assert options["iou_threshs"][0] == 0.5 and len(options["iou_threshs"]) == 10 and options["store"] == "results"


def test_the_jpeg_frame_header_says_what_pillow_says(assets: Path, tmp_path: Path):
    from PIL import Image

    from cvactive.store.resolve import image_metadata, jpeg_header

    files = sorted(assets.rglob("*.jpg"))[:400]
    rgb = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    made = {
        "grey.jpg": ("L", {}),
        "cmyk.jpg": ("CMYK", {}),
        "progressive.jpg": ("RGB", {"progressive": True}),
        "exif.jpg": ("RGB", {"exif": Image.Exif()}),
    }
    for name, (mode, kw) in made.items():
        Image.fromarray(rgb).convert(mode).save(tmp_path / name, quality=80, **kw)
        files.append(tmp_path / name)
    assert len(files) > 100
    for path in files:
        with Image.open(path) as im:
            expected = (*im.size, len(im.getbands()))
        assert jpeg_header(path) == expected, path
    Image.fromarray(rgb).save(tmp_path / "a.png")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "grey.jpg").read_bytes()[:40])
    (tmp_path / "loop.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x00" + bytes(64))  # a segment length of 0
    for bad in ("a.png", "cut.jpg", "loop.jpg"):
        assert jpeg_header(tmp_path / bad) is None, bad
    meta = image_metadata(tmp_path / "a.png", 1, 1)  # not a JPEG: Pillow reads it
    assert (meta["width"], meta["height"], meta["num_channels"]) == (53, 37, 3)
    cut = image_metadata(tmp_path / "cut.jpg", 7, 9)  # unreadable header: the record's size, no channels
    assert (cut["width"], cut["height"]) == (7, 9) and "num_channels" not in cut


def test_a_record_reached_through_a_linked_folder_has_the_key_of_the_real_file(tmp_path):
    """Import keys samples by the real path; push must too (a data folder behind a symlink, as
    ../shared can be, pushed predictions as new samples beside the imported ones)."""
    from cvactive.record import ImageRecord
    from cvactive.store.resolve import sample_key

    real = tmp_path / "real"
    real.mkdir()
    (real / "a.jpg").write_bytes(b"x")
    (tmp_path / "link").symlink_to(real)
    linked = ImageRecord(source=str(tmp_path / "link" / "a.jpg"), width=1, height=1)
    assert sample_key(linked) == str((real / "a.jpg").resolve())
    assert sample_key(ImageRecord(source=str(tmp_path / "link" / "a.jpg"), frame=3, width=1, height=1)).endswith(
        "real/a.jpg#3"
    )


def test_extract_frames_seeks_to_a_late_frame_of_a_real_video(assets: Path, tmp_path: Path, monkeypatch):
    """Push's frame extraction decodes only the frames it needs: a seek, then one grab per frame
    (before, every frame from 0 on was grabbed); the frames are those a decode from 0 gives."""
    from cvactive import sources
    from cvactive.store.resolve import SEEK_GAP, extract_frames

    video = assets / "videos" / "one-by-one-person-detection.mp4"  # h264, 1394 frames
    wanted = [1000, 1003, 1380]
    reference = {}
    for image, meta in sources.iter_video(str(video)):
        if meta.frame in wanted:
            sources.write_image(tmp_path / f"ref-{meta.frame}.jpg", image, jpeg_quality=90)
            reference[meta.frame] = (tmp_path / f"ref-{meta.frame}.jpg").read_bytes()
        if meta.frame >= max(wanted):
            break
    grabs, seeks = [], []
    real_grab, real_seek = sources.Capture.grab, sources.Capture.seek
    monkeypatch.setattr(sources.Capture, "grab", lambda self: grabs.append(1) or real_grab(self))
    monkeypatch.setattr(sources.Capture, "seek", lambda self, start: seeks.append(start) or real_seek(self, start))
    out = extract_frames(str(video), wanted, tmp_path / "frames")
    assert sorted(out) == wanted
    assert seeks == [1000, 1380]  # 1003 is near 1000: grabbed on, not sought
    assert len(grabs) == 1 + 3 + 1 < SEEK_GAP  # frame 1000; 1001, 1002 and 1003; frame 1380
    assert {f: out[f].read_bytes() for f in wanted} == reference  # the very frames, byte for byte
