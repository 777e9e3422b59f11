"""The Ray engine against the local path, with the real OpenVINO model: coco128 val2017 (with an
actor killed mid-run) and a shared video split into frame ranges (through the CLI, then resumed)."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cvactive.cli import main
from cvactive.io import load_jsonl
from cvactive.record import ImageRecord
from cvactive.scale import DetectorSpec, RayOptions, iter_records, load_manifest, score_sharded

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray", reason="the Ray engine needs Ray Data: pip install 'cvactive[ray]'")


def assert_same_records(local: list[ImageRecord], sharded: list[ImageRecord]) -> None:
    """Same images in the same order, same boxes and classes; scores within float tolerance."""
    assert [r.key for r in sharded] == [r.key for r in local]
    for a, b in zip(local, sharded):
        assert (a.width, a.height, a.timestamp) == (b.width, b.height, b.timestamp)
        np.testing.assert_array_equal(a.class_id, b.class_id, err_msg=a.key)
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=0.02, err_msg=a.key)
        np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-5, err_msg=a.key)
        assert a.image_scores.keys() == b.image_scores.keys()
        for name, value in a.image_scores.items():
            assert b.image_scores[name] == pytest.approx(value, abs=1e-5), (a.key, name)


def actor_processes() -> list:
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        text = " ".join(proc.info.get("cmdline") or [])
        if "_RayShardActor" in text and proc.pid != os.getpid():
            found.append(proc)
    return found


class Killer(threading.Thread):
    """SIGKILLs one scoring actor once ``after`` shards are done (an OOM kill, a node lost)."""

    def __init__(self, out: Path, after: int) -> None:
        super().__init__(daemon=True)
        self.out, self.after = out, after
        self.killed: int | None = None
        self.done_at_kill = -1
        self.stop = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 300
        while not self.stop.is_set() and time.monotonic() < deadline:
            done = len(list((self.out / "shards").glob("*.done.json")))
            if done >= self.after:
                procs = actor_processes()
                if procs:
                    self.done_at_kill = done
                    self.killed = procs[0].pid
                    os.kill(procs[0].pid, signal.SIGKILL)
                    return
            time.sleep(0.05)


def test_ray_equals_local_on_coco128_with_an_actor_killed_mid_run(tmp_path, assets, openvino_model):
    from cvactive.detect.model import Detector
    from cvactive.detect.stage import score_source

    images = assets / "coco128" / "images" / "val2017"
    local_file = tmp_path / "local.jsonl"
    local = score_source(images, Detector(openvino_model), local_file, progress=False)
    assert (local.records, local.boxes) == (128, 737)

    out = tmp_path / "ray"
    killer = Killer(out, after=2)
    killer.start()
    try:
        summary = score_sharded(
            images,
            out,
            DetectorSpec(openvino_model),
            ray=RayOptions(actors=2, num_cpus=2),
            shard_size=8,
            progress=False,
        )
    finally:
        killer.stop.set()
        killer.join()
    assert killer.killed is not None, "no scoring actor was found to kill"
    assert killer.done_at_kill < 16, "the actor was killed after the run had finished"
    assert (summary.shards, summary.scored_now, summary.records, summary.boxes) == (16, 16, 128, 737)
    assert_same_records(load_jsonl(local_file), list(iter_records(out)))
    shards = out / "shards"
    # the shards hold the same lines; the local file's first line also carries the model's class names
    local_bytes = re.sub(rb',"names":\{[^{}]*\}', b"", local_file.read_bytes(), count=1)
    assert local_bytes != local_file.read_bytes()
    assert b"".join(p.read_bytes() for p in sorted(shards.glob("*.jsonl"))) == local_bytes
    assert not list(shards.glob("*.tmp-*")), "a half-written shard was left behind"
    manifest = load_manifest(out)
    assert manifest["complete"] and (manifest["records"], manifest["boxes"]) == (128, 737)

    # cvactive select reads the shards (Parquet table, streamed top-k) and picks what it picks
    # from the local path's JSON-lines file.
    picks = {}
    for name, scores in (("file", local_file), ("shards", out)):
        target = tmp_path / f"{name}.jsonl"
        args = ["select", str(scores), "--k", "7", "--strategy", "uncertainty", "--seed", "1"]
        assert main([*args, "--set", "score=margin_max", "--out", str(target)]) == 0
        picks[name] = [json.loads(line)["source"] for line in target.read_text().splitlines()]
    assert picks["shards"] == picks["file"] and len(set(picks["file"])) == 7


def test_cli_ray_engine_on_video_frame_ranges_then_resumes_one_shard(tmp_path, assets, openvino_model, capsys):
    video = assets / "videos" / "slow_traffic_small.mp4"
    local_file, out = tmp_path / "local.jsonl", tmp_path / "ray"
    base = ["score", str(video), "--model", openvino_model, "--stride", "7", "--no-progress"]
    assert main([*base, "--out", str(local_file)]) == 0
    ray_args = [*base, "--out", str(out), "--engine", "ray", "--actors", "2", "--num-cpus", "2", "--shard-size", "9"]
    assert main(ray_args) == 0
    assert "scored 131 images/frames" in capsys.readouterr().out
    local = load_jsonl(local_file)
    assert [r.frame for r in local] == list(range(0, 914, 7))
    assert_same_records(local, list(iter_records(out)))
    manifest = load_manifest(out)
    assert [(s["start"], s["stop"]) for s in manifest["shards"][:2]] == [(0, 63), (63, 126)]
    assert manifest["shards"][-1]["stop"] is None  # the last range runs to the end of the video

    # Resume: a shard whose done marker is gone is scored again, the others are skipped.
    (out / "shards" / "shard-000003.done.json").unlink()
    before = (out / "shards" / "shard-000003.jsonl").read_bytes()
    assert main(ray_args) == 0
    assert "(1 now, 14 already done)" in capsys.readouterr().out
    assert (out / "shards" / "shard-000003.jsonl").read_bytes() == before
    assert_same_records(local, list(iter_records(out)))

    # Other settings in the same folder: refused, naming the difference and the fix.
    assert main([*ray_args, "--conf", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "conf" in err and "--overwrite" in err
    assert json.loads((out / "manifest.json").read_text())["complete"]
