"""tools/bench_score.py refuses to report the speed of a path that found no box."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
TOOL = Path(__file__).resolve().parent.parent / "tools" / "bench_score.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("bench_score", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_model_that_finds_nothing_gets_no_figure():
    bench = load_tool()
    frames = [np.random.default_rng(i).integers(0, 255, (96, 128, 3), dtype=np.uint8) for i in range(2)]
    # Random init at the default threshold: no box at all, so no "measures cost" figure.
    with pytest.raises(bench.NoWorkError, match="found no box"):
        bench.measures_cost("yolov8n.yaml", frames, batch=1, rounds=1, embed=False)


def test_a_model_that_detects_gets_its_figure_with_the_work_recorded(openvino_model, ultralytics_images):
    import cv2

    bench = load_tool()
    frames = [cv2.imread(ultralytics_images["bus"])] * 2
    result = bench.measures_cost(openvino_model, frames, batch=1, rounds=1, embed=False)
    assert result["boxes"] == {"plain_predict": 10, "cvactive_all_measures": 10}  # 4 people and a bus, twice
    assert set(result["ratio_to_plain_predict"]) == {"plain_predict", "cvactive_all_measures"}
