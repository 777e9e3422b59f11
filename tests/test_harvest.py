"""Harvest building blocks on tiny synthetic inputs: rules, caps, pacing, dedup, state."""

import json

import numpy as np
import pytest
from builders import from_confidences

from cvactive.detect.scorer import Scorer
from cvactive.errors import ConfigError
from cvactive.harvest import Dedup, Deduper, Ledger, Limits, Pacer, Pacing, dhash, hamming, make_rule, make_rules, phash
from cvactive.harvest.budget import quantile_threshold, target_rate
from cvactive.harvest.rules import FrameInfo, unit_draw
from cvactive.harvest.state import HarvestState, SourceState, frame_path, load_state, reconcile


def rec(conf=(), cls=(), names=None):
    r = from_confidences(conf, cls, frame=0, names=names or {0: "person"})  # 10 x 10 boxes in a 64 x 48 frame
    return Scorer(measures=("binary_entropy", "threshold_closeness"))(r)


def info(frame=0, clock=0.0):
    return FrameInfo("v.mp4", frame, clock, seed=0)


def test_unit_draw_is_deterministic_and_uniform():
    draws = np.array([unit_draw(3, "v.mp4", f) for f in range(4000)])
    assert unit_draw(3, "v.mp4", 7) == draws[7]
    assert unit_draw(4, "v.mp4", 7) != draws[7]
    assert draws.min() >= 0.0 and draws.max() < 1.0
    assert abs(draws.mean() - 0.5) < 0.02


def test_random_rule_probability_every_n_every_t():
    p = make_rule({"kind": "random", "probability": 0.25})
    fired = sum(p.fires(info(f), None) for f in range(4000))
    assert 900 < fired < 1100
    n = make_rule({"kind": "random", "every_n": 10})
    assert n.fires(info(0), None) and not n.fires(info(5), ("v.mp4", 0, 0.0)) and n.fires(info(10), ("v.mp4", 0, 0.0))
    assert n.fires(info(3), ("other.mp4", 0, 0.0))  # a new source restarts the count
    t = make_rule({"kind": "random", "every_t": 2.0})
    assert not t.fires(info(1, 1.5), ("v.mp4", 0, 0.0)) and t.fires(info(2, 2.0), ("v.mp4", 0, 0.0))
    assert not p.needs_model and n.name == "random"


def test_model_rules_on_synthetic_records():
    names = {0: "person", 1: "dog"}
    band = make_rule({"kind": "confidence_band", "threshold": 0.5, "epsilon": 0.1, "min_boxes": 2})
    assert band.fires(info(), rec([0.45, 0.58, 0.9], [0, 0, 0]))
    assert not band.fires(info(), rec([0.45, 0.9], [0, 0]))
    only_dogs = make_rule({"kind": "confidence_band", "epsilon": 0.1, "classes": ["dog"]})
    assert not only_dogs.fires(info(), rec([0.5], [0], names)) and only_dogs.fires(info(), rec([0.5], [1], names))
    unc = make_rule({"kind": "uncertainty", "score": "binary_entropy_max", "min_value": 0.9})
    assert unc.fires(info(), rec([0.5], [0])) and not unc.fires(info(), rec([0.99], [0]))
    with pytest.raises(ConfigError, match="valid scores: binary_entropy_count"):
        make_rule({"kind": "uncertainty", "score": "entropy_max"}).fires(info(), rec([0.5], [0]))
    classes = make_rule({"kind": "classes", "classes": ["dog", 7], "min_confidence": 0.3})
    assert classes.fires(info(), rec([0.4], [1], names)) and not classes.fires(info(), rec([0.2], [1], names))
    count = make_rule({"kind": "count", "min_count": 2, "max_count": 3})
    assert [count.fires(info(), rec([0.9] * k, [0] * k)) for k in range(5)] == [False, False, True, True, False]
    empty = make_rule({"kind": "empty"})
    assert empty.fires(info(), rec()) and not empty.fires(info(), rec([0.9], [0]))
    thinned = make_rule({"kind": "empty", "keep_probability": 0.1})
    assert 30 < sum(thinned.fires(info(f), rec()) for f in range(1000)) < 170


def test_rule_config_errors_name_the_valid_choices():
    with pytest.raises(ConfigError, match="expected one of random, confidence_band, uncertainty, classes, count"):
        make_rule({"kind": "smart"})
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['epsilonn'\]; valid options: .*epsilon"):
        make_rule({"kind": "confidence_band", "epsilonn": 0.1})
    with pytest.raises(ConfigError, match="repeated"):
        make_rules([{"kind": "empty"}, {"kind": "empty"}])
    with pytest.raises(ConfigError, match="at least one of"):
        make_rule({"kind": "random"})
    with pytest.raises(ConfigError, match=r"\['per_week'\]; valid options: per_minute, per_hour, per_day, total"):
        make_rule({"kind": "empty", "limits": {"per_week": 3}})
    with pytest.raises(ConfigError, match="at least one rule"):
        make_rules([])


def test_ledger_caps_per_minute_and_total():
    ledger = Ledger(Limits(per_minute=2, total=5))
    kept = []
    for second in range(0, 300, 10):
        if ledger.allows(second):
            ledger.charge(second)
            kept.append(second)
    assert kept == [0, 10, 60, 70, 120]
    assert ledger.blocked_by(400) == "total" and ledger.exhausted()
    again = Ledger(Limits(per_minute=2, total=5))
    again.load(json.loads(json.dumps(ledger.to_dict())))
    assert again.total == 5 and list(again.times) == list(ledger.times)
    with pytest.raises(ConfigError):
        Limits(per_hour=-1)


def test_target_rate_and_quantile_threshold():
    assert target_rate(10, 100.0, 1.0, 0.5) == pytest.approx(0.2)
    assert target_rate(0, 100.0, 1.0, 0.5) == 0.0
    assert target_rate(5, 0.0, 1.0, 1.0) == 5.0  # out of time: keep everything
    window = np.arange(100, dtype=float)
    assert quantile_threshold(window, 0.1) == pytest.approx(89.1)
    assert quantile_threshold(window, 1.5) == -np.inf and quantile_threshold(window, 0.0) == np.inf


@pytest.mark.parametrize("autocorrelated", [False, True])
def test_pacer_spreads_budget_over_the_stream(autocorrelated):
    rng = np.random.default_rng(1)
    n, budget = 5000, 40
    scores = rng.random(n)
    if autocorrelated:  # slow drifts, as a real feed's scores have
        scores = np.convolve(rng.random(n + 200), np.ones(200) / 200, "valid")[:n]
    pacer = Pacer(Pacing(budget=budget), budget)
    kept = []
    for i, s in enumerate(scores):
        pacer.observe_frame()
        if pacer.kept < budget and pacer.admit(s, float(i), float(n - i), 1.0, unit_draw(0, "s", i)):
            pacer.charge(float(i))
            kept.append(i)
    assert len(kept) == budget
    assert sum(k < n / 4 for k in kept) <= budget / 2
    assert sum(k >= n / 2 for k in kept) >= budget / 4
    if not autocorrelated:  # independent scores: the picks are the high ones
        assert np.mean(scores[kept]) > 0.8


def test_pacer_period_mode_and_live_needs_horizon():
    pacer = Pacer(Pacing(budget=2, period=60.0), 2)
    kept = []
    for t in range(0, 180):
        pacer.observe_frame()
        if pacer.admit(0.5, float(t), None, 1.0, unit_draw(0, "p", t)) and pacer.kept < 2:
            pacer.charge(float(t))
            kept.append(t)
    assert [sum(t // 60 == m for t in kept) for m in range(3)] == [2, 2, 2]
    with pytest.raises(ConfigError, match="horizon"):
        Pacer(Pacing(budget=2), 2).admit(0.5, 0.0, None, 1.0, 0.5)


def test_hashes_and_deduper():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    noisy = np.clip(a.astype(int) + rng.integers(-3, 4, a.shape), 0, 255).astype(np.uint8)
    b = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    for h in (phash, dhash):
        assert 0 <= h(a) < 2**64
        assert hamming(h(a), h(noisy)) <= 6 < hamming(h(a), h(b))
    d = Deduper(Dedup(max_distance=6, force_after=30.0))
    assert not d.is_duplicate(phash(a), 0.0)
    d.add(phash(a), 0.0)
    assert d.is_duplicate(phash(noisy), 10.0) and not d.is_duplicate(phash(b), 10.0)
    assert not d.is_duplicate(phash(noisy), 40.0)  # a long gap forces a keep
    emb = Deduper(Dedup(method="embedding", min_cosine=0.9))
    with pytest.raises(ConfigError, match="embeddings"):
        emb.fingerprint(a, None)
    emb.add(emb.fingerprint(a, np.array([1.0, 0.0])), 0.0)
    assert emb.is_duplicate([0.99, 0.05], 1.0) and not emb.is_duplicate([0.0, 1.0], 1.0)
    with pytest.raises(ConfigError, match="method: got 'ssim', expected one of phash, dhash, embedding"):
        Dedup(method="ssim")


def test_reconcile_cuts_the_manifest_and_removes_only_its_own_orphan_frames(tmp_path):
    src = str(tmp_path / "v.avi")
    paths = [frame_path(tmp_path, src, i).resolve() for i in range(5)]
    paths[0].parent.mkdir(parents=True)
    for path in paths:
        path.write_bytes(b"x")
    lines = [json.dumps({"path": str(path)}) + "\n" for path in paths[:3]]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(lines) + '{"path": "half')
    state = HarvestState(fingerprint="f", manifest_bytes=len(lines[0]) + len(lines[1]))
    state.sources[src] = SourceState(next_frame=2)
    state.save(tmp_path)
    user = [tmp_path / "frames" / "mine" / "holiday.jpg", paths[0].parent / "notes.jpg", paths[0].parent / "7.jpg"]
    user[0].parent.mkdir()
    for path in user:
        path.write_bytes(b"user")
    loaded = load_state(tmp_path, "f")
    assert loaded is not None and loaded.manifest_bytes == state.manifest_bytes
    # frame 2 is listed by a cut line, 3 and 4 only lie past the saved position (a kill before their lines)
    assert reconcile(tmp_path, loaded, [src]) == 3
    assert manifest.read_text() == "".join(lines[:2])
    assert sorted(p.name for p in paths[0].parent.iterdir()) == ["00000000.jpg", "00000001.jpg", "7.jpg", "notes.jpg"]
    assert all(path.read_bytes() == b"user" for path in user)
    with pytest.raises(ConfigError, match="different config"):
        load_state(tmp_path, "other")
    for text in ("{", "[1, 2]", '"x"', '{"version": 1}', '{"version": 1, "fingerprint": "f", "sources": [1]}'):
        (tmp_path / "state.json").write_text(text)
        with pytest.raises(ConfigError, match=r"unreadable.*nothing was changed: --fresh moves this harvest aside"):
            load_state(tmp_path, "f")


def test_reconcile_never_cuts_lines_it_did_not_write(tmp_path):
    src = str(tmp_path / "v.avi")
    manifest = tmp_path / "manifest.jsonl"
    theirs = [
        '{"path": "/elsewhere/a.jpg"}\n',  # a line, but not a frame of this harvest
        "not json\n",
        json.dumps({"path": str(tmp_path / "frames" / "mine" / "00000001.jpg")}) + "\n",
    ]
    for text in theirs:
        manifest.write_text(text)
        with pytest.raises(ConfigError, match="did not write; nothing was changed"):
            reconcile(tmp_path, None, [src])
        assert manifest.read_text() == text
    manifest.write_text(json.dumps({"path": str(frame_path(tmp_path, src, 3))}) + "\n")
    assert reconcile(tmp_path, None, [src]) == 0 and manifest.read_text() == ""  # its own line, no file


def test_shipped_harvest_configs_are_valid():
    from cvactive._config import CONFIG_DIR, load_yaml
    from cvactive.harvest.options import HarvestOptions

    configs = sorted(CONFIG_DIR.glob("harvest*.yaml"))
    assert len(configs) >= 3
    for path in configs:
        built = HarvestOptions.of(load_yaml(path))
        assert built.rules and built.stride >= 1
