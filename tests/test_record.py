import json
from dataclasses import replace

import numpy as np
import pytest
from builders import random_record

from cvactive.detect.scorer import Scorer
from cvactive.errors import MissingClassScoresError, RecordError
from cvactive.io import load_jsonl, record_from_dict, record_to_dict, write_jsonl
from cvactive.record import Harvested, ImageRecord, Selection


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
    rec.extra["brightness"] = 0.5
    data = record_to_dict(rec, class_scores=True)
    assert list(data)[:7] == ["source", "frame", "timestamp", "width", "height", "boxes", "image_scores"]
    write_jsonl(tmp_path / "s.jsonl", [rec], class_scores=True)
    (back,) = load_jsonl(tmp_path / "s.jsonl")
    assert back.key == "img.jpg#7" and back.extra == {"brightness": 0.5} and back.harvested is None
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


# -- the selection result: a typed field, the same JSON keys as before ------------------------------
#: A line as `cvactive select` wrote it before the selection result became a typed field (extra
#: fields first, then rank, utility and strategy, last; box scores in the measures' order).
OLD_SELECT_LINE = (
    '{"source":"pool/a.jpg","frame":null,"timestamp":null,"width":64,"height":48,"boxes":[{"xyxy":[1.0,2.0,30.5,'
    '40.0],"class_id":1,"class_name":"cat","confidence":0.75,"scores":{"margin":0.3,"entropy":0.5,"binary_entropy":0.8},"class_scores":[0.1,0.75]}],'
    '"image_scores":{"entropy_max":0.5},"embedding":[0.25,-1.5],"rules":["random"],"path":"pool/a.jpg","rank":3,'
    '"utility":0.123457,"strategy":"hybrid"}\n'
)


def test_selection_is_checked_at_birth():
    assert Selection(np.int64(2), np.float32(0.5), "kcenter") == Selection(2, 0.5, "kcenter")
    assert isinstance(Selection(np.int64(2), 1, "x").rank, int) and Selection(1, 1, "x").utility == 1.0
    assert Selection(1, float("inf"), "kcenter").utility == float("inf")  # a k-center first pick
    for bad, match in (
        ({"rank": 0}, r"selection rank: expected an integer >= 1 \(1 = label first\), got 0"),
        ({"rank": True}, "selection rank: .* got True"),
        ({"rank": 1.0}, r"selection rank: .* got 1\.0"),
        ({"utility": "high"}, "selection utility: expected a number, got 'high'"),
        ({"strategy": ""}, "selection strategy: expected a non-empty strategy name, got ''"),
        ({"strategy": None}, "selection strategy: .* got None"),
    ):
        with pytest.raises(RecordError, match=match):
            Selection(**{"rank": 1, "utility": 0.5, "strategy": "hybrid", **bad})
    with pytest.raises(RecordError, match=r"selection: expected a cvactive\.record\.Selection or None, got dict"):
        ImageRecord("a.jpg", 10, 10, selection={"rank": 1, "utility": 0.5, "strategy": "hybrid"})
    with pytest.raises(RecordError, match=r"extra: \['rank'\] belong to the record's typed selection result"):
        ImageRecord("a.jpg", 10, 10, extra={"rank": 1, "path": "a.jpg"})


def test_a_selected_record_round_trips_with_its_selection(tmp_path):
    picked = Selection(rank=2, utility=0.25, strategy="hybrid")
    rec = replace(Scorer()(random_record(3)), extra={"note": "img.jpg"}, selection=picked)
    assert rec[rec.confidence > 0.5].selection == picked  # box selection keeps it
    data = record_to_dict(rec)
    assert list(data)[-4:] == ["note", "rank", "utility", "strategy"]  # the keys, and where, as before
    assert (data["rank"], data["utility"], data["strategy"]) == (2, 0.25, "hybrid")
    write_jsonl(tmp_path / "s.jsonl", [rec, random_record(1)])
    back, plain = load_jsonl(tmp_path / "s.jsonl")
    assert back.selection == picked and back.extra == {"note": "img.jpg"}
    assert plain.selection is None and "rank" not in record_to_dict(plain)


def test_files_written_before_the_typed_selection_load_and_write_back_unchanged(tmp_path):
    old = tmp_path / "selected.jsonl"
    old.write_text(OLD_SELECT_LINE)
    (rec,) = load_jsonl(old)
    assert rec.selection == Selection(rank=3, utility=0.123457, strategy="hybrid")
    assert rec.extra == {} and rec.harvested == Harvested(rules=("random",), path="pool/a.jpg")
    again = tmp_path / "again.jsonl"
    write_jsonl(again, [rec], class_scores=True)
    assert again.read_bytes() == old.read_bytes()


def test_a_partial_selection_result_is_refused_naming_what_is_missing(tmp_path):
    data = json.loads(OLD_SELECT_LINE)
    del data["utility"], data["strategy"]
    path = tmp_path / "partial.jsonl"
    path.write_text(json.dumps(data) + "\n")
    with pytest.raises(RecordError, match=r"partial\.jsonl:1: .*got \['rank'\] without \['utility', 'strategy'\]"):
        load_jsonl(path)
    with pytest.raises(RecordError, match="selection rank: expected an integer >= 1"):
        record_from_dict({**json.loads(OLD_SELECT_LINE), "rank": 0})


def test_push_reads_the_selection_from_the_record(tmp_path):
    """What push writes and how it tags a record come from ``record.selection`` (no FiftyOne needed)."""
    from cvactive.store.fields import field_values
    from cvactive.store.tags import chosen_for_review, record_tags

    path = tmp_path / "selected.jsonl"
    path.write_text(OLD_SELECT_LINE)
    (rec,) = load_jsonl(path)
    values = field_values(rec, label_field="predictions", round_=1, provenance=None)
    assert (values["selection_rank"], values["selection_utility"], values["selection_strategy"]) == (
        3.0,
        0.123457,
        "hybrid",
    )
    plain = replace(rec, extra={}, selection=None)
    rules = rec.harvested.rules if rec.harvested is not None else ()
    assert chosen_for_review(None, rec.selection) and not chosen_for_review(None, None)
    assert chosen_for_review(None, None, rules)
    assert record_tags(rec.extra, round_=1, selection=rec.selection, rules=rules) == [
        "round-1",
        "rule:random",
        "strategy:hybrid",
        "to-review",
    ]
    assert "selection_rank" not in field_values(plain, label_field="predictions", round_=1, provenance=None)


# -- the harvest provenance: a typed field, the manifest's keys as before ----------------------------
#: A manifest line as `cvactive harvest` wrote it before the provenance became a typed field.
OLD_MANIFEST_LINE = (
    '{"source":"cam.mp4","frame":40,"timestamp":1.6,"width":64,"height":48,"boxes":[],"image_scores":{},'
    '"inferred":false,"rules":["random"],"path":"/h/frames/cam/00000040.jpg","delay":0.25}\n'
)


def test_a_harvested_record_round_trips_with_its_provenance(tmp_path):
    old = tmp_path / "manifest.jsonl"
    old.write_text(OLD_MANIFEST_LINE)
    (rec,) = load_jsonl(old)
    assert rec.harvested == Harvested(rules=("random",), path="/h/frames/cam/00000040.jpg", delay=0.25, inferred=False)
    assert rec.extra == {}  # nothing of the harvest left in the untyped dict
    write_jsonl(tmp_path / "again.jsonl", [rec])
    (back,) = load_jsonl(tmp_path / "again.jsonl")
    assert back.harvested == rec.harvested
    assert record_to_dict(back)["inferred"] is False and "inferred" not in Harvested(("r",), "a.jpg").to_dict()
    assert rec[[]].harvested == rec.harvested  # box selection keeps it
    assert Harvested(rules="random", path=None).rules == ("random",)  # one rule name, no saved frame
    from cvactive.selection.pool import Pool

    fields = Pool.from_records([rec]).fields
    assert "delay" not in fields and "inferred" not in fields and "frame" in fields  # provenance is not a score


def test_the_harvest_provenance_is_checked_at_birth(tmp_path):
    for kwargs, match in (
        ({}, "needs the rules that kept the frame or its saved path"),
        ({"rules": ("ok", "")}, "harvest rules: expected a list of rule names"),
        ({"rules": [1]}, "harvest rules: expected a list of rule names"),
        ({"path": ""}, "harvest path: expected the saved frame's file name"),
        ({"path": "a.jpg", "delay": "late"}, "harvest delay: expected seconds as a number, got 'late'"),
        ({"path": "a.jpg", "inferred": "no"}, "harvest inferred: expected true or false"),
        ({"path": "bad\udcff.jpg"}, "not valid UTF-8"),
    ):
        with pytest.raises(RecordError, match=match):
            Harvested(**kwargs)
    with pytest.raises(RecordError, match=r"extra: \['rules'\] belong to the record's typed harvest provenance"):
        ImageRecord("a.jpg", 10, 10, extra={"rules": ["random"]})
    with pytest.raises(RecordError, match=r"harvested: expected a cvactive\.record\.Harvested or None, got dict"):
        ImageRecord("a.jpg", 10, 10, harvested={"rules": ["random"]})
    bad = tmp_path / "s.jsonl"
    bad.write_text(OLD_MANIFEST_LINE.replace("0.25", '"soon"'))
    with pytest.raises(RecordError, match=r"s\.jsonl:1: .*harvest delay"):
        load_jsonl(bad)


def test_packed_class_scores_and_embeddings_round_trip_exactly(tmp_path):
    emb = np.random.default_rng(0).normal(0, 1e-7, 256).astype(np.float32)  # tiny values stay exact
    rec = Scorer()(random_record(4, frame=3, embedding=emb))
    plain, packed = tmp_path / "plain.jsonl", tmp_path / "packed.jsonl"
    write_jsonl(plain, [rec], class_scores=True)
    write_jsonl(packed, [rec], class_scores=True, packed=True)
    (back,) = load_jsonl(packed)
    np.testing.assert_array_equal(back.class_scores, rec.class_scores)
    np.testing.assert_array_equal(back.embedding, rec.embedding)
    line = json.loads(packed.read_text())
    assert isinstance(line["embedding"], str) and isinstance(line["boxes"][0]["class_scores"], str)
    assert packed.stat().st_size < plain.stat().st_size
    with pytest.raises(RecordError, match="embedding: not a packed float32 array"):
        record_from_dict({**line, "embedding": "not base64!"})
    with pytest.raises(RecordError, match="embedding: a packed float32 array of 3 bytes"):
        record_from_dict({**line, "embedding": "AAAA"})


def test_the_full_class_names_survive_a_round_trip(tmp_path):
    names = {i: f"class {i}" for i in range(80)}
    recs = [replace(random_record(2, seed=s), names=names, class_id=np.array([1, 1])) for s in range(3)]
    other = replace(random_record(1, seed=9), names={0: "cat", 1: "dog"}, class_id=np.array([0]))
    path = tmp_path / "s.jsonl"
    write_jsonl(path, [*recs, other, recs[0]])
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert ["names" in ln for ln in lines] == [True, False, False, True, True]  # first line and each change
    back = load_jsonl(path)
    assert [r.names for r in back] == [names, names, names, {0: "cat", 1: "dog"}, names]
    assert record_from_dict(lines[1]).names == {1: names[1]}  # a line alone: the names of its boxes
    assert record_from_dict(lines[1], names).names == names
    old = tmp_path / "old.jsonl"  # a file written before names were kept: the classes of the boxes, as before
    old.write_text(OLD_SELECT_LINE)
    assert load_jsonl(old)[0].names == {1: "cat"}


def test_a_file_appended_to_is_the_file_written_at_once(tmp_path):
    """A resumed harvest or score appends: the names are not written again (the bytes are the same)."""
    from cvactive.io import JsonlWriter, last_names

    names = {i: f"class {i}" for i in range(5)}
    recs = [replace(random_record(2, seed=s), names=names, class_id=np.array([1, 1])) for s in range(4)]
    write_jsonl(tmp_path / "once.jsonl", recs, packed=True, class_scores=True)
    for part in (recs[:2], recs[2:]):
        with JsonlWriter(tmp_path / "twice.jsonl", append=True, packed=True, class_scores=True) as writer:
            for rec in part:
                writer.write(rec)
    assert (tmp_path / "twice.jsonl").read_bytes() == (tmp_path / "once.jsonl").read_bytes()
    assert last_names(tmp_path / "once.jsonl") == names and last_names(tmp_path / "none.jsonl") == {}
