#!/usr/bin/env python
"""Harvest a camera feed unattended, for hours: the script a team deploys next to a camera.

    .venv/bin/python tools/harvest_feed.py rtsp://cam-1/stream --config configs/harvest.yaml \\
        --out /data/harvest/cam-1 [--model weights.pt] [--log-every 60] [--log-file cam-1.log]

It runs :func:`cvactive.harvest.harvest` on the source, logging its counts (frames, inferred,
kept, refusals by reason) every ``--log-every`` seconds to stderr and ``--log-file``. When the
source gives up (a stream that stays down past the config's ``retry`` attempts) it waits
``--restart-wait`` seconds and starts again with the same state, so the budget ledger, pacing
and dedup memory carry over; it ends when a file source is finished, the budget is spent, or
on SIGTERM / Ctrl-C (state saved first). Under systemd, ``Restart=on-failure`` plus this
script's own restarts keep a feed harvested through network outages and reboots.

Exit codes: 0 finished (file read or budget spent), 2 bad input (missing file, invalid config),
143 / 130 stopped by SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cvactive.cli.harvest import CONFIG_KEYS, SIGNAL_EXIT  # noqa: E402
from cvactive.config import load_yaml  # noqa: E402
from cvactive.errors import ConfigError, CvactiveError  # noqa: E402

log = logging.getLogger("harvest_feed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="stream URL, camera index, video file or folder of videos")
    parser.add_argument("--config", required=True, help="harvest YAML (configs/harvest.yaml)")
    parser.add_argument("--out", required=True, help="harvest folder (resumed when it exists)")
    parser.add_argument("--model", default=None, help="weights (default: the COCO YOLOv8n OpenVINO model)")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--device", default=None)
    parser.add_argument("--log-every", type=float, default=60.0, help="seconds between count lines (60)")
    parser.add_argument("--log-file", default=None, help="also append the log to this file")
    parser.add_argument("--restart-wait", type=float, default=30.0, help="seconds before restarting a dead feed")
    parser.add_argument("--max-restarts", type=int, default=-1, help="give up after this many (-1: never)")
    args = parser.parse_args(argv)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if args.log_file:
        handlers.append(logging.FileHandler(args.log_file))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers)
    stop = threading.Event()
    caught: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        caught.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return _run(args, stop, caught)
    except CvactiveError as err:
        log.error("%s", err)
        return err.exit_code


def _run(args: argparse.Namespace, stop: threading.Event, caught: list[str]) -> int:
    from cvactive.cli._common import default_model
    from cvactive.detector import Detector
    from cvactive.harvest import harvest

    options = load_yaml(args.config)
    unknown = sorted(set(options) - set(CONFIG_KEYS))
    if unknown:
        raise ConfigError(f"{args.config}: unknown option(s) {unknown}; valid options: {', '.join(CONFIG_KEYS)}")
    options["log_every"] = args.log_every
    detector = Detector(args.model or default_model(), imgsz=args.imgsz, conf=args.conf, device=args.device)
    restarts = 0
    while True:
        started = time.monotonic()
        summary = harvest(
            args.source, args.out, detector=detector, progress=False, stop=stop, handle_signals=False, **options
        )
        c = summary.counts
        log.info(
            "run ended after %.0f s: %d frames, %d inferred, %d kept (total %d); refused %s",
            time.monotonic() - started,
            summary.frames,
            summary.inferred,
            summary.kept,
            summary.kept_total,
            {k: c.get(k, 0) for k in ("rule_limit", "budget", "pacing", "duplicate")},
        )
        for path, reason in summary.report.failures:
            log.warning("source %s: %s", path, reason)
        if stop.is_set():
            log.info("stopped by %s; state saved in %s", caught[0] if caught else "request", args.out)
            return SIGNAL_EXIT.get(caught[0], 130) if caught else 0
        if summary.complete:
            log.info("finished: %s", "budget spent" if summary.budget_spent else "all sources read")
            return 0
        restarts += 1
        if 0 <= args.max_restarts < restarts:
            log.error("feed keeps failing; gave up after %d restarts", args.max_restarts)
            return 1
        log.warning("feed ended; restart %d in %.0f s", restarts, args.restart_wait)
        if stop.wait(args.restart_wait):
            return SIGNAL_EXIT.get(caught[0], 130) if caught else 0


if __name__ == "__main__":
    sys.exit(main())
