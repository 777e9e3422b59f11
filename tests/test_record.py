import json

import numpy as np
import pytest
from builders import random_record

from cvactive.errors import MissingClassScoresError, RecordError
from cvactive.io import load_jsonl, record_from_dict, record_to_dict, write_jsonl
from cvactive.record import ImageRecord
from cvactive.scoring import Scorer


def test_validation_names_expected_and_actual_shapes():
    with pytest.raises(RecordError, match=r"expected shape \(N, 4\), got \(2, 3\)"):
        ImageRecord("a.jpg", 10, 10, xyxy=np.zeros((2, 3)))
    with pytest.raises(RecordError, match=r"confidence: expected shape \(2,\)"):
        ImageRecord("a.jpg", 10, 10, xyxy=np.zeros((2, 4)), confidence=np.zeros(3), class_id=np.zeros(2))
    with pytest.raises(RecordError, match="positive"):
        ImageRecord("a.jpg", 0, 10)
    with pytest.raises(RecordError, match=r"class_scores: expected shape \(1, C\)"):
        ImageRecord(
            "a.jpg", 10, 10, xyxy=np.zeros((1, 4)), confidence=[0.5], class_id=[0], class_scores=np.ones((2, 3))
        )
    with pytest.raises(RecordError, match=r"\[0, 1\]"):
        ImageRecord("a.jpg", 10, 10, xyxy=np.zeros((1, 4)), confidence=[1.5], class_id=[0])


def test_empty_len_and_selection():
    empty = ImageRecord.empty("a.jpg", 10, 10)
    assert len(empty) == 0 and empty.xyxy.shape == (0, 4)
    rec = Scorer()(random_record(5))
    sub = rec[rec.confidence > 0.5]
    assert len(sub) == int((rec.confidence > 0.5).sum())
    assert sub.class_scores is not None and sub.class_scores.shape == (len(sub), 4)
    assert all(v.shape == (len(sub),) for v in sub.box_scores.values())
    assert len(rec[1]) == 1 and len(rec[1:3]) == 2
    assert len(rec) == 5  # selection returns a new record


def test_require_class_scores_refuses():
    rec = ImageRecord("a.jpg", 10, 10, xyxy=np.zeros((1, 4)), confidence=[0.5], class_id=[0])
    with pytest.raises(MissingClassScoresError, match=r"a\.jpg"):
        rec.require_class_scores("entropy")
    scored = Scorer().for_record(rec)(rec)
    assert "binary_entropy_max" in scored.image_scores and "entropy_max" not in scored.image_scores


def test_json_round_trip(tmp_path):
    rec = Scorer()(random_record(3, frame=7, timestamp=0.7, embedding=np.arange(5, dtype=np.float32)))
    rec.extra["rules"] = ["random"]
    data = record_to_dict(rec, class_scores=True)
    assert list(data)[:7] == ["source", "frame", "timestamp", "width", "height", "boxes", "image_scores"]
    write_jsonl(tmp_path / "s.jsonl", [rec], class_scores=True)
    (back,) = load_jsonl(tmp_path / "s.jsonl")
    assert back.key == "img.jpg#7" and back.extra == {"rules": ["random"]}
    np.testing.assert_allclose(back.xyxy, rec.xyxy, atol=0.01)
    np.testing.assert_allclose(back.class_scores, rec.class_scores, atol=1e-5)
    np.testing.assert_allclose(back.embedding, rec.embedding)
    assert back.image_scores == pytest.approx(rec.image_scores, abs=1e-5)
    assert back.box_scores["entropy"] == pytest.approx(rec.box_scores["entropy"], abs=1e-5)


def test_malformed_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps(record_to_dict(random_record(1)))
    path.write_text(good + "\n{not json\n")
    with pytest.raises(RecordError, match=r"bad\.jsonl:2"):
        load_jsonl(path)
    with pytest.raises(RecordError, match="missing keys"):
        record_from_dict({"source": "x"})
