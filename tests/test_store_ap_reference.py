"""``cvactive evaluate``'s per-class AP against pycocotools' COCOeval on a real case (slow).

The COCO YOLOv8n (OpenVINO INT8) on the 128 COCO val2017 images at confidence 0.001: dozens of
classes, misses and many false positives. Ground truth and predictions go to FiftyOne through
cvactive (import, score, push, evaluate) and, independently, straight from the YOLO labels and
the scores file to COCO JSON for pycocotools.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TOLERANCE = 0.005


@pytest.fixture(scope="module")
def coco_val(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """coco128's data.yaml with an absolute path (its own says ``path: .``)."""
    from cvactive._config import load_yaml

    root = assets / "coco128"
    if not (root / "images" / "val2017").is_dir():
        pytest.skip("coco128 val2017 images missing from the assets")
    data = load_yaml(root / "config.yaml")
    data.update(path=str(root), train="images/val2017", val="images/val2017")
    out = tmp_path_factory.mktemp("coco") / "data.yaml"
    out.write_text(json.dumps(data))  # JSON is YAML
    return out


def cocoeval_per_class(data_yaml: Path, scores: Path) -> dict[str, tuple[float | None, float | None]]:
    """pycocotools' per-class (AP50, AP50:95) of the scores file against the YOLO labels."""
    pytest.importorskip("pycocotools", reason="pycocotools is in the dev extra: pip install -e '.[dev]'")
    from PIL import Image
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from cvactive.io import read_jsonl
    from cvactive.yolodata import load_yolo_dataset
    from tests.coco_reference import coco_ground_truth, coco_predictions, per_class_ap

    ydata = load_yolo_dataset(data_yaml, splits=("val",))
    items = list(ydata.items("val"))
    sizes = {}
    for item in items:
        with Image.open(item.image) as im:
            sizes[str(Path(item.image).resolve())] = im.size
    ids: dict[str, int] = {}
    gt = COCO()
    gt.dataset = coco_ground_truth(items, ydata.names, sizes, ids)
    gt.createIndex()
    dt = gt.loadRes(coco_predictions(read_jsonl(scores), ids))
    ev = COCOeval(gt, dt, "bbox")
    ev.evaluate()
    ev.accumulate()
    by_id = per_class_ap(ev.eval["precision"], list(ev.params.catIds))
    return {ydata.names[cat - 1]: ap for cat, ap in by_id.items()}


def test_evaluate_matches_pycocotools_per_class(coco_val: Path, openvino_model: str, tmp_path: Path):
    from cvactive.detect.model import Detector
    from cvactive.detect.stage import score_source
    from cvactive.store import connect
    from cvactive.store.evaluate import evaluate_round
    from cvactive.store.labels import import_yolo_dataset
    from cvactive.store.push import push_file

    fo = connect()
    name = f"ap-{uuid.uuid4().hex[:6]}"
    root = Path(json.loads(coco_val.read_text())["path"])
    scores = tmp_path / "val.jsonl"
    score_source(root / "images" / "val2017", Detector(openvino_model, conf=0.001), scores, progress=False)
    try:
        import_yolo_dataset(coco_val, name, splits=("val",), progress=False)
        push_file(scores, name, progress=False)
        result, _, _ = evaluate_round(name, "predictions", "ground_truth", 1, store="none", out_dir=tmp_path)
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)
    reference = cocoeval_per_class(coco_val, scores)
    with_gt = {c: r for c, r in result.per_class.items() if r["gt"]}
    assert len(with_gt) >= 30  # a real case: many classes ...
    assert sum(r["pred"] for r in with_gt.values()) > 5 * sum(r["gt"] for r in with_gt.values())  # ... many FPs
    assert any(r["ap50"] < 0.5 for r in with_gt.values())  # ... and misses
    worst = {"ap50": 0.0, "ap": 0.0}
    for cls, row in with_gt.items():
        ref50, ref = reference[cls]
        assert ref50 is not None and ref is not None, cls
        worst["ap50"] = max(worst["ap50"], abs(row["ap50"] - ref50))
        worst["ap"] = max(worst["ap"], abs(row["ap"] - ref))
        assert row["ap50"] == pytest.approx(ref50, abs=TOLERANCE), (cls, row, reference[cls])
        assert row["ap"] == pytest.approx(ref, abs=TOLERANCE), (cls, row, reference[cls])
    print(f"{len(with_gt)} classes; largest difference AP50 {worst['ap50']:.5f}, AP50:95 {worst['ap']:.5f}")
