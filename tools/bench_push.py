#!/usr/bin/env python
"""Push benchmark: cvactive's batched, idempotent push against one ``add_sample`` per record, in one run.

Builds N scored records with B boxes each (frames of a harvest manifest, each shown by one of
a few small JPEGs, so every record has its own key), then times in the same process and
database:

* ``batched``: :func:`cvactive.store.push.push_records` into a new data set (one key lookup,
  ``add_samples`` in batches);
* ``repush``: the same records pushed again into that data set (``set_values`` updates);
* ``naive``: a new data set filled with ``dataset.add_sample(sample)`` once per record, with the
  same samples. When ``--naive-records`` is less than N, the naive loop runs on that many
  records and its time is extrapolated linearly to N (the JSON says so);
* ``fo_add_samples``: FiftyOne's own batched ``add_samples`` on the same samples (for reference).

    .venv/bin/python tools/bench_push.py [--records 5000] [--boxes 10] [--naive-records N]
                                         [--out benchmarks/results/push.json] [--quick]
    .venv/bin/python tools/bench_push.py --video VIDEO[:N] [--video VIDEO[:N] ...]

``--video`` runs only the video benchmark (its ``video`` key of the JSON): ``N`` frames of the
second half of a real video pushed from a scores file (no saved frames), as push does it now
(seeking to each frame, the record's size as metadata) and as it did before (every frame from 0
grabbed, each image's header read), alternating, best of two each.

Goal (issue 5): batched at least 10x faster than one add_sample at a time.
Uses the FiftyOne database of the environment (FIFTYONE_DATABASE_DIR / FIFTYONE_DATABASE_URI);
its data sets are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cvactive.detect.scorer import Scorer  # noqa: E402
from cvactive.record import Harvested, ImageRecord  # noqa: E402


def make_records(n: int, boxes: int, folder: Path, rng: np.random.Generator) -> list[ImageRecord]:
    import cv2

    images = []
    for i in range(20):
        path = folder / f"frame_{i:02d}.jpg"
        cv2.imwrite(str(path), rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
        images.append(str(path))
    names = {i: f"class_{i}" for i in range(8)}
    scorer = Scorer()
    out = []
    for i in range(n):
        xy = rng.uniform(0, 60, (boxes, 2))
        wh = rng.uniform(5, 60, (boxes, 2))
        scores = rng.uniform(0.0, 1.0, (boxes, len(names))).astype(np.float32)
        record = ImageRecord(
            source=str(folder / "camera.mp4"), frame=i, timestamp=i / 30, width=128, height=96,
            xyxy=np.hstack([xy, xy + wh]).astype(np.float32), confidence=scores.max(axis=1),
            class_id=scores.argmax(axis=1), class_scores=scores, names=names,
            harvested=Harvested(rules=("uncertainty",), path=images[i % len(images)]),
        )  # fmt: skip
        out.append(scorer(record))
    return out


def fo_samples(records: list[ImageRecord]) -> Iterator[Any]:
    """The same samples as the push writes, built as FiftyOne objects (lazily, as a loop would)."""
    import fiftyone

    from cvactive.store.fields import sample_fields
    from cvactive.store.tags import KEY_FIELD, record_tags

    for record in records:
        assert record.harvested is not None and record.harvested.path is not None
        yield fiftyone.Sample(
            filepath=record.harvested.path,
            tags=record_tags(record.extra, round_=1, rules=record.harvested.rules),
            metadata=fiftyone.ImageMetadata.build_for(record.harvested.path),  # size, type, channels: as push
            **{KEY_FIELD: record.key},
            **sample_fields(fiftyone, record, label_field="predictions", round_=1, provenance=None),
        )


def naive_push(records: list[ImageRecord], name: str) -> float:
    """One ``add_sample`` call per record, with the same sample contents as the batched push."""
    import fiftyone

    ds = fiftyone.Dataset(name)
    start = time.perf_counter()
    for sample in fo_samples(records):
        ds.add_sample(sample)
    return time.perf_counter() - start


def fo_batched_push(records: list[ImageRecord], name: str) -> float:
    """FiftyOne's own batched ``add_samples`` (mongoengine documents per sample and label)."""
    import fiftyone

    ds = fiftyone.Dataset(name)
    start = time.perf_counter()
    ds.add_samples(fo_samples(records), progress=False)
    return time.perf_counter() - start


def extract_from_zero(video: str, frames: list[int], out_dir: Path) -> dict[int, Path]:
    """Push's frame extraction before it sought (commit 958d1d7): every frame from 0 on is grabbed."""
    from cvactive.sources import Capture, write_image

    out_dir.mkdir(parents=True, exist_ok=True)
    cap, found, index = Capture(video), {}, 0
    try:
        for target in sorted(set(frames)):
            while index < target and cap.grab():
                index += 1
            image = cap.retrieve() if index == target and cap.grab() else None
            index += 1
            if image is None:
                break
            found[target] = out_dir / f"{target:07d}.jpg"
            write_image(found[target], image, jpeg_quality=90)
    finally:
        cap.release()
    return found


def video_bench(video: Path, n: int) -> dict[str, object]:
    """Push ``n`` frames spread over the last half of a real video (a scores file of a video, no saved
    frames) before and after push sought and used the record's size: total time, frames grabbed."""
    from cvactive.sources import Capture, open_video
    from cvactive.store import connect, resolve
    from cvactive.store.push import push_records

    cap, info = open_video(str(video))
    cap.release()  # type: ignore[attr-defined]
    frames = sorted({int(f) for f in np.linspace(info.frame_count // 2, info.frame_count - 2, n)})
    records = [ImageRecord(source=str(video), width=info.width, height=info.height, frame=f, timestamp=f / info.fps,
                           xyxy=np.array([[10, 10, 60, 60]], np.float32), confidence=np.array([0.6], np.float32),
                           class_id=np.array([0]), names={0: "car"})
               for f in frames]  # fmt: skip
    grabs = [0]
    real_grab, real_extract, real_meta = Capture.grab, resolve.extract_frames, resolve.image_metadata
    Capture.grab = lambda self: grabs.__setitem__(0, grabs[0] + 1) or real_grab(self)  # type: ignore[method-assign]
    fo, result = connect(), dict[str, float]()
    try:
        for run in ("before", "after", "before", "after"):  # alternating: the machine's load hits both
            if run == "before":  # the extraction from frame 0 and a header read per image, as before
                resolve.extract_frames = extract_from_zero  # type: ignore[assignment]
                resolve.image_metadata = lambda path, w, h, channels=None: real_meta(path, w, h)  # type: ignore
            grabs[0] = 0
            name = f"bench-push-video-{uuid.uuid4().hex[:6]}"
            with tempfile.TemporaryDirectory(prefix="bench-push-video-") as tmp:
                start = time.perf_counter()
                summary = push_records(records, name, frames_dir=tmp, brain=False, progress=False)
                took = time.perf_counter() - start
            fo.delete_dataset(name)
            resolve.extract_frames, resolve.image_metadata = real_extract, real_meta  # type: ignore[assignment]
            assert summary.added == len(records), summary
            result[f"{run}_s"] = round(min(result.get(f"{run}_s", took), took), 3)
            result[f"{run}_frames_grabbed"] = grabs[0]
            print(f"{run}: {took:.2f} s, {grabs[0]} frames grabbed", flush=True)
    finally:
        Capture.grab = real_grab  # type: ignore[method-assign]
    note = (
        "best of two runs each, alternating; 'before' is this push with the extraction from frame 0 and the "
        "header read per image that push did before (tools/bench_push.py extract_from_zero)"
    )
    speedup = round(result["before_s"] / result["after_s"], 2)
    return {
        "video": video.name,
        "frames_in_video": info.frame_count,
        "frames_pushed": len(records),
        "first_frame": frames[0],
        **result,
        "speedup": speedup,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "note": note,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--boxes", type=int, default=10)
    parser.add_argument(
        "--naive-records", type=int, default=None, help="records for the naive loop, scaled up (default: all)"
    )
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="1000 records, baselines on 200")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "push.json"))
    parser.add_argument(
        "--video",
        action="append",
        default=[],
        metavar="VIDEO[:N]",
        help="only the video benchmark, N frames (default 40) of VIDEO (repeatable; the 'video' key)",
    )
    args = parser.parse_args()
    if args.video:
        out = Path(args.out)
        old = json.loads(out.read_text()) if out.is_file() else {}
        runs = [(v.rpartition(":")[0], int(v.rpartition(":")[2])) if ":" in v else (v, 40) for v in args.video]
        old["video"] = [video_bench(Path(video), n) for video, n in runs]
        from cvactive.outputs import portable_text

        out.write_text(portable_text(json.dumps(old, indent=2)) + "\n")
        print(f"-> {out}")
        return 0
    if args.quick:
        args.records, args.naive_records = 1000, 200
    naive_n = min(args.naive_records or args.records, args.records)

    from cvactive.store import connect
    from cvactive.store.push import push_records

    fo = connect()
    rng = np.random.default_rng(0)
    tag = uuid.uuid4().hex[:6]
    names = {k: f"bench-push-{k}-{tag}" for k in ("batched", "naive", "fo_add_samples")}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
            records = make_records(args.records, args.boxes, Path(tmp), rng)
            print(f"{len(records)} records x {args.boxes} boxes built; pushing batched ...", flush=True)
            start = time.perf_counter()
            first = push_records(records, names["batched"], round_=1, batch_size=args.batch_size, progress=False)
            batched_s = time.perf_counter() - start
            start = time.perf_counter()
            again = push_records(records, names["batched"], round_=1, batch_size=args.batch_size, progress=False)
            repush_s = time.perf_counter() - start
            assert first.added == args.records and again.updated == args.records and again.samples == args.records
            print(f"batched {batched_s:.1f} s, re-push {repush_s:.1f} s; naive add_sample on {naive_n} ...", flush=True)
            naive_measured = naive_push(records[:naive_n], names["naive"])
            naive_count = len(fo.load_dataset(names["naive"]))
            print(f"naive {naive_measured:.1f} s; FiftyOne add_samples on {naive_n} ...", flush=True)
            fo_measured = fo_batched_push(records[:naive_n], names["fo_add_samples"])
    finally:
        for name in names.values():
            if fo.dataset_exists(name):
                fo.delete_dataset(name)
    naive_s = naive_measured * args.records / naive_n
    result = {
        "benchmark": "push",
        "records": args.records,
        "boxes_per_record": args.boxes,
        "batch_size": args.batch_size,
        "batched_s": round(batched_s, 3),
        "batched_records_per_s": round(args.records / batched_s, 1),
        "repush_s": round(repush_s, 3),
        "repush_records_per_s": round(args.records / repush_s, 1),
        "naive_records_measured": naive_n,
        "naive_measured_s": round(naive_measured, 3),
        "naive_records_per_s": round(naive_n / naive_measured, 1),
        "naive_s": round(naive_s, 3),
        "naive_extrapolated": naive_n < args.records,
        "naive_note": (
            f"one add_sample per record timed on the first {naive_n} records and scaled linearly to {args.records}"
            if naive_n < args.records
            else "one add_sample per record on all records"
        ),
        "naive_samples_written": naive_count,
        "fo_add_samples_measured_s": round(fo_measured, 3),
        "fo_add_samples_records_per_s": round(naive_n / fo_measured, 1),
        "fo_add_samples_note": "FiftyOne's own batched add_samples with the same samples, same record count as naive",
        "speedup_batched_vs_fo_add_samples": round(fo_measured * args.records / naive_n / batched_s, 2),
        "speedup_batched_vs_naive": round(naive_s / batched_s, 2),
        "speedup_repush_vs_naive": round(naive_s / repush_s, 2),
        "goal": "batched >= 10x naive",
        "goal_met": naive_s / batched_s >= 10,
        "machine": {"python": platform.python_version(), "cpu_count": __import__("os").cpu_count()},
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from cvactive.outputs import portable_text  # paths relative to the repository / assets

    if out.is_file() and "video" in json.loads(out.read_text()):
        result["video"] = json.loads(out.read_text())["video"]  # the --video run's figures stay

    out.write_text(portable_text(json.dumps(result, indent=2)) + "\n")
    print(
        f"batched: {result['batched_records_per_s']} rec/s, re-push: {result['repush_records_per_s']} rec/s, "
        f"naive add_sample: {result['naive_records_per_s']} rec/s, "
        f"FiftyOne add_samples: {result['fo_add_samples_records_per_s']} rec/s\n"
        f"speed-up batched/naive: {result['speedup_batched_vs_naive']}x "
        f"(re-push/naive {result['speedup_repush_vs_naive']}x; goal 10x: {'met' if result['goal_met'] else 'NOT met'})"
        f"\n-> {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
