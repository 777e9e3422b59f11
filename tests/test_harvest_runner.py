"""The harvest loop on small synthetic videos with cheap rules only (no model): fast."""

import functools
import http.server
import json
import threading

import cv2
import numpy as np
import pytest

from cvactive.cli import main
from cvactive.errors import ConfigError, SourceError
from cvactive.harvest import harvest
from cvactive.harvest.runner import _Harvester

RULES = [{"kind": "random", "name": "r", "probability": 0.3}]


def write_video(path, frames=60, fps=10.0, seed=0, size=(64, 48)):
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return path


def manifest(out):
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def run(video, out, **kw):
    kw.setdefault("rules", RULES)
    return harvest(video, out, annotate=False, progress=False, handle_signals=False, **kw)


def test_random_harvest_writes_frames_and_manifest(tmp_path):
    # the draws depend on the (tmp) path: 100 grid frames make 5 firings at p=0.3 certain in practice
    video = write_video(tmp_path / "v.avi", frames=200)
    s = run(video, tmp_path / "h", stride=2, budget={"total": 5})
    lines = manifest(tmp_path / "h")
    assert s.kept == s.kept_total == len(lines) == 5 and s.budget_spent and s.complete
    assert s.inferred == 0
    for line in lines:
        assert list(line)[:7] == ["source", "frame", "timestamp", "width", "height", "boxes", "image_scores"]
        assert line["rules"] == ["r"] and line["frame"] % 2 == 0 and line["inferred"] is False
        assert cv2.imread(line["path"]).shape == (48, 64, 3)
    again = run(video, tmp_path / "h", stride=2, budget={"total": 5})
    assert again.kept == 0 and len(manifest(tmp_path / "h")) == 5  # nothing twice


def test_rule_limits_caps_and_dedup(tmp_path):
    video = write_video(tmp_path / "v.avi", frames=200, fps=10.0)
    rules = [{"kind": "random", "name": "every", "every_n": 1, "limits": {"per_minute": 3}}]
    s = run(video, tmp_path / "a", rules=rules)  # 20 s of video: 3 per minute
    assert s.kept == 3 and s.counts["rule_limit"] == 197
    s = run(video, tmp_path / "b", rules=[{"kind": "random", "every_n": 1}], budget={"per_minute": 4})
    assert s.kept == 4 and s.counts["budget"] == 196
    still = tmp_path / "still.avi"
    writer = cv2.VideoWriter(str(still), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    for _ in range(100):
        writer.write(frame)
    writer.release()
    dedup = {"method": "dhash", "max_distance": 4, "force_after": 4.0}
    s = run(still, tmp_path / "c", rules=[{"kind": "random", "every_n": 1}], dedup=dedup)
    assert [ln["frame"] for ln in manifest(tmp_path / "c")] == [0, 40, 80]  # a still scene: forced keeps only


def test_crash_midway_then_resume_matches_uninterrupted(tmp_path, monkeypatch):
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(2):
        write_video(videos / f"v{i}.avi", frames=80, seed=i)
    kw = {"pacing": {"score": "random", "budget": 12}, "dedup": {"max_distance": 2}, "stride": 1}
    full = run(videos, tmp_path / "full", **kw)
    assert full.kept == 12 and full.complete
    keep = _Harvester.keep
    calls = {"n": 0}

    def crashing_keep(self, *args):
        keep(self, *args)  # JPEG and manifest line written, state not yet saved
        calls["n"] += 1
        if calls["n"] == 7:
            raise RuntimeError("power cut")

    monkeypatch.setattr(_Harvester, "keep", crashing_keep)
    with pytest.raises(RuntimeError):
        run(videos, tmp_path / "cut", **kw)
    monkeypatch.setattr(_Harvester, "keep", keep)
    assert len(manifest(tmp_path / "cut")) == 7
    seventh = manifest(tmp_path / "cut")[6]["path"]
    # files a user put beside the frames, one named like a frame: the reconcile leaves them alone
    ours = next((tmp_path / "cut" / "frames").iterdir())
    user = [tmp_path / "cut" / "frames" / "mine" / "holiday.jpg", ours / "notes.jpg", ours / "12345678.jpeg"]
    user[0].parent.mkdir()
    for path in user:
        path.write_bytes(b"the user's")
    resumed = run(videos, tmp_path / "cut", **kw)
    assert resumed.kept == 6  # the 7th is decided again after the reconcile
    assert all(path.read_bytes() == b"the user's" for path in user)
    for path in user:
        path.unlink()
    a, b = manifest(tmp_path / "full"), manifest(tmp_path / "cut")
    assert [(x["source"], x["frame"]) for x in a] == [(x["source"], x["frame"]) for x in b]
    assert seventh == b[6]["path"]  # written again, at the same name
    assert len({x["path"] for x in b}) == 12 == len(list((tmp_path / "cut" / "frames").rglob("*.jpg")))
    assert {x["source"] for x in b} == {str(videos / "v0.avi"), str(videos / "v1.avi")}
    with pytest.raises(ConfigError, match="different config"):
        run(videos, tmp_path / "cut", **{**kw, "seed": 1})
    assert run(videos, tmp_path / "cut", fresh=True, **{**kw, "seed": 1}).kept == 12
    (aside,) = tmp_path.glob("cut.old-*")  # --fresh moved the old harvest aside, whole
    assert manifest(aside) == b and len(list((aside / "frames").rglob("*.jpg"))) == 12


def test_stop_event_saves_state(tmp_path):
    video = write_video(tmp_path / "v.avi", frames=50)
    stop = threading.Event()
    stop.set()
    s = run(video, tmp_path / "h", stop=stop)
    assert s.stopped == "stop" and not s.complete and s.frames == 0
    assert json.loads((tmp_path / "h" / "state.json").read_text())["sources"][str(video)]["next_frame"] == 0
    assert run(video, tmp_path / "h").complete


def test_bad_sources_and_options(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        run(tmp_path / "missing.mp4", tmp_path / "h")
    (tmp_path / "imgs").mkdir()
    cv2.imwrite(str(tmp_path / "imgs" / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SourceError, match="holds no video"):
        run(tmp_path / "imgs", tmp_path / "h")
    video = write_video(tmp_path / "v.avi", frames=5)
    with pytest.raises(ConfigError, match="need a model"):
        harvest(video, tmp_path / "h", rules=[{"kind": "empty"}], progress=False)
    with pytest.raises(ConfigError, match="pacing needs a budget"):
        run(video, tmp_path / "h", pacing={"score": "random"})


def test_cli_truncated_video_exit_1_and_missing_source_exit_2(tmp_path, capsys):
    video = write_video(tmp_path / "v.avi", frames=100)
    data = video.read_bytes()
    truncated = tmp_path / "t.avi"
    truncated.write_bytes(data[: len(data) // 2])
    config = tmp_path / "h.yaml"
    config.write_text("annotate: false\nrules:\n  - {kind: random, every_n: 10}\n")
    code = main(["harvest", str(truncated), "--config", str(config), "--out", str(tmp_path / "h"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"failed {truncated}: video ended at frame" in out and "of 100 (truncated or corrupt)" in out
    code = main(["harvest", str(tmp_path / "nope.mp4"), "--config", str(config), "--out", str(tmp_path / "x")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    config.write_text("rules: []\nbogus: 1\n")
    assert main(["harvest", str(video), "--config", str(config), "--out", str(tmp_path / "y")]) == 2
    assert "valid options: rules" in capsys.readouterr().err


def test_live_stream_drop_is_retried_and_reported(tmp_path):
    write_video(tmp_path / "v.avi", frames=20)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v.avi"
    try:
        # a recording served over HTTP, not a camera: read every frame in order (keep_up=False)
        retry = {"attempts": 2, "backoff": 0.01}
        s = run(url, tmp_path / "h", rules=[{"kind": "random", "every_n": 5}], retry=retry, keep_up=False)
    finally:
        server.shutdown()
    # the "stream" ends after 20 frames and comes back twice: 60 frames, numbered on
    assert s.frames == 60 and [ln["frame"] for ln in manifest(tmp_path / "h")] == list(range(0, 60, 5))
    assert sum("reconnected" in e for e in s.events) == 2
    ((source, reason),) = s.report.failures
    assert source == url and reason == "stream dropped at frame 60; gave up after 2 tries"


def test_workers_option_is_checked_and_not_part_of_the_config_hash(tmp_path, capsys):
    video = write_video(tmp_path / "v.avi", frames=30)
    for bad in (-1, "2", True):
        with pytest.raises(ConfigError, match=r"harvest: workers: got .*, expected an integer >= 0 or null"):
            run(video, tmp_path / "h", workers=bad)
    stop = threading.Event()
    stop.set()
    assert run(video, tmp_path / "h", workers=0, stop=stop).stopped == "stop"
    assert run(video, tmp_path / "h", workers=3).complete  # resumed: workers changes no decision
    config = tmp_path / "h.yaml"
    config.write_text("annotate: false\nworkers: -1\nrules:\n  - {kind: random, every_n: 10}\n")
    assert main(["harvest", str(video), "--config", str(config), "--out", str(tmp_path / "x")]) == 2
    assert "workers" in capsys.readouterr().err
    config.write_text("annotate: false\nworkers: 0\nrules:\n  - {kind: random, every_n: 10}\n")
    with pytest.raises(SystemExit):
        main(["harvest", str(video), "--config", str(config), "--out", str(tmp_path / "x"), "--workers", "two"])
    assert "--workers: 'two' is not an integer" in capsys.readouterr().err
    args = ["harvest", str(video), "--config", str(config), "--out", str(tmp_path / "x"), "--no-progress"]
    assert main([*args, "--workers", "2"]) == 0 and len(manifest(tmp_path / "x")) == 3


def test_frame_tap_hands_out_at_most_its_window_until_frames_are_taken():
    """A live source's frames wait in the camera's slot, not in the pipeline: the tap holds ``window``."""
    from cvactive.harvest.frames import FeedFrame
    from cvactive.harvest.infer import FrameTap

    image = np.zeros((4, 4, 3), np.uint8)
    frames = [FeedFrame("cam", i, float(i), _image=image) for i in range(5)]
    halt = threading.Event()
    tap = FrameTap(frames, 2, halt)
    pulled: list[int] = []

    def pull() -> None:
        pulled.extend(meta.frame for _image, meta in tap)

    reader = threading.Thread(target=pull)
    reader.start()
    reader.join(0.5)
    assert pulled == [0, 1] and reader.is_alive()  # a third frame waits for room
    assert tap.taken().index == 0
    reader.join(0.5)
    assert pulled == [0, 1, 2]
    halt.set()  # a halted tap stops waiting for room
    reader.join(1.0)
    assert not reader.is_alive() and pulled == [0, 1, 2]
    assert [tap.taken().index for _ in range(2)] == [1, 2]
    unlimited = FrameTap(frames, None, threading.Event())
    assert [meta.frame for _image, meta in unlimited] == [0, 1, 2, 3, 4]


def test_default_config_spreads_its_per_minute_cap_over_a_short_clip(tmp_path):
    # issue #25: the shipped config's pacing aimed at budget.total (5,000), so on a 30 s clip every
    # candidate passed pacing and the per-minute cap of 6 was spent in the first seconds
    from cvactive._config import CONFIG_DIR
    from cvactive.config import load_config

    config = load_config("harvest", CONFIG_DIR / "harvest.yaml")
    video = write_video(tmp_path / "v.avi", frames=300, fps=10.0)  # 30 s
    pacing = {**config["pacing"], "score": "random"}  # no model here: random thinning, same budget
    s = run(video, tmp_path / "h", rules=[{"kind": "random", "every_n": 1}], budget=config["budget"], pacing=pacing)
    times = [line["timestamp"] for line in manifest(tmp_path / "h")]
    assert s.kept == config["budget"]["per_minute"] == 6
    # over the clip, not its first seconds: the straight-line schedule (budget by 90% of the clip,
    # 1 frame of slack) allows at most 3 before 6 s and forces the 5th after 18 s
    assert sum(t < 6.0 for t in times) <= 3 and max(times) >= 15.0


@pytest.mark.slow
def test_a_rerun_with_nothing_left_does_not_load_the_model(tmp_path, openvino_model, monkeypatch, capsys):
    # issue #25: a harvest rerun that had nothing left loaded the model all the same
    import cvactive.cli.harvest as cli_harvest

    loads = []
    real = cli_harvest.make_detector

    def counting(args, **kw):
        loads.append(args.model)
        return real(args, **kw)

    monkeypatch.setattr(cli_harvest, "make_detector", counting)
    video = write_video(tmp_path / "v.avi", frames=20)
    config = tmp_path / "h.yaml"
    config.write_text("rules: [{kind: count, min_count: 0}]\nbudget: {total: 2}\n")
    args = ["harvest", str(video), "--model", openvino_model, "--config", str(config), "--out", str(tmp_path / "h")]
    assert main([*args, "--no-progress"]) == 0 and len(loads) == 1
    assert main([*args, "--no-progress"]) == 0 and len(loads) == 1  # budget spent: nothing to infer
    assert "looked at 0 frames" in capsys.readouterr().out
    assert len(manifest(tmp_path / "h")) == 2
    bad = ["harvest", str(video), "--model", str(tmp_path / "none.pt"), "--config", str(config)]
    assert main([*bad, "--out", str(tmp_path / "new")]) == 2 and not (tmp_path / "new").exists()
