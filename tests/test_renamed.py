"""Old names (flags, config keys, keyword arguments) keep working for one release, with a one-line warning."""

from __future__ import annotations

import inspect
import json

import pytest

from cvactive._config import load_yaml
from cvactive._renamed import RenamedWarning, rename_keys, renamed_kwargs
from cvactive.cli import main
from cvactive.config import CONFIG_DIR, check_config, load_config
from cvactive.errors import ConfigError
from cvactive.io import write_jsonl
from cvactive.schemas import RENAMED, SCHEMAS
from cvactive.selection.synthetic import synthetic_records

LATER = "the old name works until the next release"


def test_renamed_keys_name_real_keys_and_the_shipped_configs_use_the_new_ones():
    for kind, renames in RENAMED.items():
        fields = SCHEMAS[kind].model_fields
        assert all(new in fields and old not in fields for old, new in renames.items()), kind
    shipped = [("select.yaml", "select"), ("health.yaml", "health")]
    shipped += [(f"{name}.yaml", "harvest") for name in ("harvest", "harvest-paced", "harvest-porch")]
    for name, kind in shipped:
        assert not set(load_yaml(CONFIG_DIR / name)) & set(RENAMED[kind]), name


def test_an_old_config_key_is_read_under_its_new_name_with_one_warning(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("strategy: hybrid\nrng: 3\nk: 5\n")
    with pytest.warns(RenamedWarning, match=f"^{path}: config key 'rng' is renamed 'seed'; {LATER}$") as caught:
        options = load_config("select", path)
    assert len(caught) == 1
    assert options == {"strategy": "hybrid", "seed": 3, "k": 5} and list(options) == ["strategy", "seed", "k"]
    with pytest.warns(RenamedWarning, match="health.yaml: config key 'rng' is renamed 'seed'"):
        assert check_config("health", {"rng": 1, "max_images": 4}, "health.yaml") == {"seed": 1, "max_images": 4}
    with pytest.raises(ConfigError, match=r"old.yaml: both 'rng' and 'seed' given; keep 'seed' only"):
        rename_keys({"rng": 1, "seed": 2}, {"rng": "seed"}, "old.yaml")
    with pytest.warns(RenamedWarning), pytest.raises(ConfigError, match=r"old.yaml: seed: got -1, expected an integer"):
        check_config("select", {"rng": -1}, "old.yaml")  # the value is still checked, under its new name
    old_harvest = tmp_path / "harvest.yaml"
    old_harvest.write_text("frame_stride: 4\nrules:\n  - {kind: random, every_n: 2}\n")
    with pytest.warns(RenamedWarning, match="config key 'frame_stride' is renamed 'stride'"):
        assert load_config("harvest", old_harvest)["stride"] == 4


def test_harvest_takes_its_old_stride_keyword_with_a_warning(tmp_path):
    import numpy as np

    from cvactive.harvest import harvest
    from cvactive.sources import write_video

    video = tmp_path / "v.mp4"
    write_video(video, (np.full((48, 64, 3), 10 * i, np.uint8) for i in range(12)), fps=10, size=(64, 48))
    assert "stride" in inspect.signature(harvest).parameters
    rules = [{"kind": "random", "every_n": 1}]
    with pytest.warns(RenamedWarning, match=r"harvest\(\): keyword argument 'frame_stride' is renamed 'stride'"):
        old = harvest(video, tmp_path / "old", rules=rules, frame_stride=4, annotate=False, progress=False)
    new = harvest(video, tmp_path / "new", rules=rules, stride=4, annotate=False, progress=False)
    assert old.frames == new.frames == 3  # frames 0, 4 and 8


def test_an_old_keyword_argument_is_passed_on_under_its_new_name():
    @renamed_kwargs(n="k")
    def make(data: str, *, k: int, quality: int = 95) -> tuple[str, int, int]:
        return data, k, quality

    assert list(inspect.signature(make).parameters) == ["data", "k", "quality"]  # new names only
    assert make("d", k=2) == ("d", 2, 95)
    with pytest.warns(RenamedWarning, match=rf"^make\(\): keyword argument 'n' is renamed 'k'; {LATER}$"):
        assert make("d", n=3, quality=80) == ("d", 3, 80)
    with pytest.raises(ConfigError, match=r"make\(\): both n= and k= given; pass k= only"):
        make("d", n=3, k=4)


def test_the_command_line_prints_an_old_config_key_once_in_one_line_and_runs_as_with_the_new(tmp_path, capsys):
    scores = tmp_path / "pool.jsonl"
    write_jsonl(scores, synthetic_records(40, rng=0))
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text("strategy: random\nk: 5\nrng: 7\n")
    new.write_text("strategy: random\nk: 5\nseed: 7\n")
    picked = {}
    for path in (old, new):
        out = tmp_path / f"{path.stem}.jsonl"
        assert main(["select", str(scores), "--config", str(path), "--out", str(out)]) == 0
        picked[path.stem] = [json.loads(line)["source"] for line in out.read_text().splitlines()]
        picked[path.stem + "-err"] = capsys.readouterr().err.splitlines()
    assert picked["old"] == picked["new"] and len(picked["old"]) == 5
    assert picked["old-err"] == [f"warning: {old}: config key 'rng' is renamed 'seed'; {LATER}"]
    assert picked["new-err"] == []
