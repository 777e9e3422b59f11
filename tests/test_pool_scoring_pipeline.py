"""The loop's pool scoring, its error-model scoring and the Ray actors' shard scoring through the
inference pipeline: the records must be the ones batch-after-batch scoring gives, bit for bit (a
running study resumes on them). Real models, real images: the COCO ``.pt`` rebuilt from the
shared OpenVINO model on coco128, and the OpenVINO model on coco128 val2017 and traffic frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_pipeline_models import assert_same_records

from cvactive.detect.model import Detector
from cvactive.detect.scorer import Scorer

pytestmark = pytest.mark.slow


def test_the_loops_scored_pool_is_the_same_with_and_without_the_pipeline(coco128_val_yaml, pretrained_pt, tmp_path):
    from cvactive.loop.config import LoopConfig
    from cvactive.loop.study import Study

    cfg = LoopConfig(strategies=("uncertainty",), initial=10, budget=10, rounds=1, seeds=1, model=str(pretrained_pt))
    scored = {}
    for workers in (0, 2):
        study = Study(coco128_val_yaml, tmp_path / "study", cfg, workers=workers)
        study.pool = study.pool[:40]  # 40 of the 128 train images: batches of 16, 16 and 8, mixed sizes
        scored[workers] = study.scored_pool(str(pretrained_pt))
    boxes = assert_same_records(scored[2], scored[0])
    assert len(scored[0]) == 40 and boxes > 100
    assert all(r.embedding is not None and "entropy_max" in r.image_scores for r in scored[2])


def test_the_error_models_labeled_scoring_is_the_same_with_the_pipeline(coco128_val_yaml, pretrained_pt):
    from cvactive.errormodel.collect import collect_labeled
    from cvactive.yolodata import load_yolo_dataset

    ds = load_yolo_dataset(coco128_val_yaml)
    items = list(ds.items("val"))[:24]
    detector = Detector(pretrained_pt, imgsz=256, conf=0.05)
    alone = collect_labeled(detector, items, ds.names, progress=False, workers=0)
    piped = collect_labeled(detector, items, ds.names, progress=False, workers=2)
    assert_same_records([s.record for s in piped], [s.record for s in alone])
    for a, b in zip(alone, piped):
        np.testing.assert_array_equal(a.gt_xyxy, b.gt_xyxy)
        np.testing.assert_array_equal(a.gt_class, b.gt_class)
    assert sum(len(s.gt_class) for s in alone) > 50


def test_a_ray_actors_shard_files_are_the_same_with_and_without_the_pipeline(assets, openvino_model, tmp_path):
    from cvactive.scale.work import ShardScorer
    from cvactive.sharded import Shard

    images = sorted(str(p) for p in (assets / "coco128" / "images" / "val2017").glob("*.jpg"))[:24]
    shards = [
        Shard(0, paths=tuple(images)),
        Shard(1, video=str(assets / "videos" / "slow_traffic_small.mp4"), start=0, stop=120, stride=4),
    ]
    written = {}
    for workers in (0, 2):
        scorer = ShardScorer(tmp_path / f"w{workers}", lambda: Detector(openvino_model), Scorer(), workers=workers)
        results = [scorer.score(shard) for shard in shards]
        assert [r.records for r in results] == [24, 30] and all(r.boxes > 0 for r in results)
        folder = tmp_path / f"w{workers}" / "shards"
        written[workers] = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if "done" not in p.name}
    assert written[2].keys() == written[0].keys() and len(written[0]) >= 4
    assert written[2] == written[0]


def test_shard_scorer_defaults_to_the_pipeline(tmp_path, openvino_model):
    from cvactive.detect.pipeline import default_workers
    from cvactive.scale.work import ShardScorer

    assert ShardScorer(Path(tmp_path), lambda: Detector(openvino_model), Scorer()).workers == default_workers()
