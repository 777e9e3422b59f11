"""Several cameras harvested at once (real MJPEG streams on loopback): own state each, a shared site budget."""

import itertools
import json
import threading
import time

import cv2
import pytest
from mjpeg_stream import MjpegCamera, read_number

from cvactive.cli import main
from cvactive.errors import ConfigError
from cvactive.harvest import harvest_feeds

EVERY = [{"kind": "random", "name": "every", "every_n": 1}]
KW = {"rules": EVERY, "annotate": False, "retry": {"attempts": 0}, "handle_signals": False}


def manifest(folder):
    path = folder / "manifest.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def stop_after(seconds):
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    return stop


def test_one_camera_that_drops_and_one_that_hangs_do_not_stall_the_others(tmp_path):
    with (
        MjpegCamera(25.0, 1000) as steady,
        MjpegCamera(25.0, 1000, drop_after=15) as dropping,  # closes after 0.6 s, stays given up on
        MjpegCamera(25.0, 1000, stall_after=15) as hanging,  # stops sending after 0.6 s, connection open
    ):
        urls = [steady.url, dropping.url, hanging.url]
        started = time.time()
        site = harvest_feeds(urls, tmp_path / "site", stop=stop_after(3.0), **KW)
        ended = time.time()
    assert ended - started < 3.0 + 1.5  # the hung camera's reader does not hold the stop
    assert site.stopped == "stop" and not site.errors
    assert json.loads((tmp_path / "site" / "site.json").read_text())["sources"] == {
        u: site.folders[u].name for u in urls
    }
    lines = {u: manifest(site.folders[u]) for u in urls}
    assert all((site.folders[u] / "state.json").is_file() for u in urls)  # own state per source
    # the steady camera was followed to the end, without a gap, while the others dropped and hung
    takes = [ln["timestamp"] + ln["delay"] for ln in lines[steady.url]]
    assert takes[0] - started < 1.0 and ended - takes[-1] < 1.0
    assert max(b - a for a, b in itertools.pairwise(takes)) < 0.5
    assert len(lines[steady.url]) + site.feeds[steady.url].summary.stale >= 0.8 * 25 * 3.0
    assert all(read_number(cv2.imread(ln["path"])) == ln["frame"] for ln in lines[steady.url])
    dropped = site.feeds[dropping.url].summary
    assert dropped.report.failures == [(dropping.url, "stream dropped at frame 15; gave up after 0 tries")]
    assert 0 < len(lines[dropping.url]) <= 15 and 0 < len(lines[hanging.url]) <= 15
    assert not site.feeds[hanging.url].summary.report.failures  # still waiting on it when stopped
    frames = {u: [ln["frame"] for ln in lines[u]] for u in urls}
    assert all(f == sorted(set(f)) for f in frames.values())


def test_site_budget_caps_all_cameras_together_and_survives_a_restart(tmp_path):
    with MjpegCamera(25.0, 1000) as a, MjpegCamera(25.0, 1000) as b, MjpegCamera(25.0, 1000) as c:
        urls = [a.url, b.url, c.url]
        site = harvest_feeds(urls, tmp_path / "site", site_budget={"per_minute": 7}, stop=stop_after(2.0), **KW)
        kept = {u: len(manifest(site.folders[u])) for u in urls}
        shares = {u: json.loads((site.folders[u] / "state.json").read_text())["site_ledger"] for u in urls}
        assert sum(kept.values()) == 7 == site.site_kept_total  # never more, though three threads raced for it
        assert {u: shares[u]["total"] for u in urls} == kept
        refused = sum(site.feeds[u].summary.counts["site_budget"] for u in urls)
        assert refused > 0
        # within the same minute, a restarted harvest finds the site budget spent: nothing more is kept
        again = harvest_feeds(urls, tmp_path / "site", site_budget={"per_minute": 7}, stop=stop_after(1.0), **KW)
        assert sum(len(manifest(again.folders[u])) for u in urls) == 7 == again.site_kept_total
        with pytest.raises(ConfigError, match="different config"):
            harvest_feeds(urls, tmp_path / "site", site_budget={"per_minute": 8}, stop=stop_after(0.5), **KW)


def test_site_total_spent_ends_every_camera(tmp_path):
    with MjpegCamera(25.0, 1000) as a, MjpegCamera(25.0, 1000) as b:
        site = harvest_feeds([a.url, b.url], tmp_path / "site", site_budget={"total": 6}, **KW)
    assert site.site_kept_total == 6 and site.stopped is None
    assert all(r.summary.budget_spent and r.summary.complete for r in site.feeds.values())


def test_cli_harvests_several_sources_and_checks_them_first(tmp_path, capsys):
    config = tmp_path / "h.yaml"
    config.write_text("annotate: false\nretry: {attempts: 0}\nrules:\n  - {kind: random, every_n: 2}\n")
    with MjpegCamera(25.0, 20) as a, MjpegCamera(25.0, 30) as b:
        code = main(["harvest", a.url, b.url, "--config", str(config), "--out", str(tmp_path / "o"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1  # both streams ended and were given up on
    assert f"{a.url} -> " in out and f"{b.url} -> " in out
    assert "stream dropped at frame 20" in out and "stream dropped at frame 30" in out
    missing = str(tmp_path / "nope.mp4")
    assert main(["harvest", a.url, missing, "--config", str(config), "--out", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err
    config.write_text("annotate: false\nsite_budget: {total: 3}\nrules:\n  - {kind: random, every_n: 2}\n")
    assert main(["harvest", a.url, "--config", str(config), "--out", str(tmp_path / "y")]) == 2
    assert "with one source use budget" in capsys.readouterr().err
