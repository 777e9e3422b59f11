"""The review plugin's verdicts (cvactive.store.verdicts), the plugin folder the App server loads
(cvactive.store.plugins), and FiftyOne's removed-option warnings kept out of `cvactive review`'s log."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml
from builders import yolo_records


def test_the_plugin_folder_is_set_for_the_app_unless_the_user_has_one(monkeypatch, tmp_path: Path, caplog):
    from cvactive.store.plugins import PLUGINS_DIR, use_review_plugin

    monkeypatch.setenv("FIFTYONE_PLUGINS_DIR", "")  # unset (and restored afterwards)
    assert use_review_plugin() and Path(os.environ["FIFTYONE_PLUGINS_DIR"]) == PLUGINS_DIR
    monkeypatch.setenv("FIFTYONE_PLUGINS_DIR", str(tmp_path))
    with caplog.at_level(logging.WARNING):
        assert not use_review_plugin()
    assert "review buttons" in caplog.text and str(tmp_path) in caplog.text
    (tmp_path / "cvactive-review").symlink_to(PLUGINS_DIR / "cvactive-review")
    assert use_review_plugin()


def test_the_plugin_declares_every_operator_it_registers():
    import importlib.util

    from cvactive.store.plugins import PLUGINS_DIR, REVIEW_PLUGIN

    folder = PLUGINS_DIR / "cvactive-review"
    manifest = yaml.safe_load((folder / "fiftyone.yml").read_text())
    assert manifest["name"] == REVIEW_PLUGIN
    spec = importlib.util.spec_from_file_location("cvactive_review_plugin", folder / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    registered: list[str] = []

    class Ctx:
        def register(self, op: type) -> None:
            registered.append(op().config.name)

    module.register(Ctx())
    assert registered == manifest["operators"]
    assert {"approve", "reject", "tag_fp", "tag_wrong_class", "tag_missed", "next_in_queue"} <= set(registered)


def test_fiftyones_removed_app_option_warnings_are_filtered_and_no_others(caplog):
    import fiftyone as fo
    from fiftyone.core.state import StateDescription

    from cvactive.store.plugins import quiet_removed_app_options

    state = StateDescription(config=fo.app_config.copy()).serialize()
    with caplog.at_level(logging.WARNING, logger="fiftyone.core.config"):
        StateDescription.from_dict(state)  # what the App session does each time it reads its state
        assert "`show_label` App config option has been removed" in caplog.text  # the noise, before
        caplog.clear()
        quiet_removed_app_options()
        StateDescription.from_dict(state)
        logging.getLogger("fiftyone.core.config").warning("Ignoring invalid timezone '%s'", "x")
    assert "has been removed" not in caplog.text and "Ignoring invalid timezone 'x'" in caplog.text


@pytest.mark.slow
def test_verdicts_replace_their_opposite_and_next_skips_reviewed_samples(porch_data: Path):
    from cvactive.record import Selection
    from cvactive.store import connect
    from cvactive.store.push import push_records
    from cvactive.store.verdicts import next_in_queue, queue_order, tag_labels, tag_samples

    fo = connect()
    name = f"verdicts-{uuid.uuid4().hex[:6]}"
    records = yolo_records(porch_data, "val", np.random.default_rng(1), n=4)
    for i, r in enumerate(records):
        r.image_scores["entropy_max"] = 1.0 - i / 10
        r.selection = Selection(rank=i + 1, utility=1.0, strategy="uncertainty")
    push_records(records, name, round_=1, progress=False)
    ds = fo.load_dataset(name)
    try:
        order = queue_order(ds)
        assert len(order) == 4 and next_in_queue(ds) == order[0] and next_in_queue(ds, order[0]) == order[1]
        assert tag_samples(ds, [order[0]], "approved") == 1
        assert tag_samples(ds, [order[0]], "rejected") == 1  # a change of mind
        assert set(ds[order[0]].tags) & {"approved", "rejected"} == {"rejected"}
        tag_samples(ds, [order[1]], "approved")
        assert next_in_queue(ds, order[0]) == order[2] and next_in_queue(ds, order[3]) == order[2]  # wraps round
        box = ds[order[2]].predictions.detections[0]
        selected = [{"label_id": box.id, "sample_id": order[2], "field": "predictions"}]
        assert tag_labels(ds, selected, "fp") == 1 and tag_labels(ds, selected, "wrong-class") == 1
        tags = {d.id: set(d.tags) for d in ds[order[2]].predictions.detections}
        assert tags.pop(box.id) == {"wrong-class"} and all(not t for t in tags.values())
        tag_samples(ds, order[2:], "approved")
        assert next_in_queue(ds, order[3]) is None
        with pytest.raises(Exception, match="unknown verdict"):
            tag_samples(ds, [order[0]], "fp")
    finally:
        fo.delete_dataset(name)
