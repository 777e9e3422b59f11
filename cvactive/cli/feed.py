"""``cvactive feed SOURCE --config configs/harvest.yaml --out DIR``: harvest a camera unattended.

The command a team deploys next to a camera (under systemd, ``Restart=on-failure``). It runs
the harvest of :mod:`cvactive.harvest` on the source, logs its running counts every
``--log-every`` seconds (to stderr and ``--log-file``, with times), and when the stream stays
down past the config's ``retry`` attempts it waits ``--restart-wait`` seconds and carries on
with the same state, so the budget ledger, pacing and dedup memory carry over. It ends when a
file source is finished, the budget is spent, or on SIGTERM / Ctrl-C (state saved first).

``--out`` is checked, claimed and locked for the whole feed (restart waits included) as
``cvactive harvest`` does it: a second run into the folder fails at once, naming the first.

Exit codes: 0 finished (file read or budget spent), 1 gave up after ``--max-restarts`` or a file
source failed part-way, 2 bad input (missing source, a video file that cannot be opened, invalid
config, a folder that is not a harvest's or that another run holds), 143 / 130 stopped by
SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from cvactive.cli._common import add_consistency_options, add_detector_options
from cvactive.cli.harvest import SIGNAL_EXIT, add_option_flags, load_options

log = logging.getLogger("cvactive.feed")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "feed",
        help="harvest a camera feed unattended for hours: log counts, restart a dead stream, stop cleanly",
        description="Run the harvest on a camera for as long as it is left running: log the running counts "
        "every --log-every seconds (stderr and --log-file, with times); when the stream stays down past the "
        "config's retry attempts, wait --restart-wait seconds and carry on with the same state (budget ledger, "
        "pacing and dedup memory carry over). Ends when a file source is finished, the budget is spent, or on "
        "SIGTERM/Ctrl-C (state saved first). Exit codes: 0 finished, 1 gave up after --max-restarts, 2 bad input, "
        "130/143 stopped by SIGINT/SIGTERM.",
    )
    p.add_argument(
        "source",
        nargs="+",
        help="stream URL (rtsp/http), camera index, video file or folder of videos; several are harvested at "
        "once, one folder each under --out, each restarted on its own",
    )
    p.add_argument("--config", required=True, help="harvest YAML (see configs/harvest.yaml)")
    p.add_argument("--out", required=True, help="harvest folder (resumed when it holds this config's harvest)")
    add_detector_options(p)
    p.set_defaults(batch=None)  # --batch overrides the config's batch (default 1)
    add_option_flags(p)
    p.add_argument(
        "--fresh",
        action="store_true",
        help="move a previous harvest in --out aside (renamed DIR.old-<time>, nothing deleted) and start over",
    )
    p.add_argument("--log-every", type=float, default=60.0, help="seconds between count lines (60)")
    p.add_argument("--log-file", default=None, help="also append the log to this file")
    p.add_argument("--restart-wait", type=float, default=30.0, help="seconds before restarting a dead feed (30)")
    p.add_argument("--max-restarts", type=int, default=-1, help="give up after this many restarts (-1: never)")
    add_consistency_options(p)
    p.set_defaults(func=run)


def _logging(args: argparse.Namespace) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if args.log_file:
        handlers.append(logging.FileHandler(args.log_file))
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


class _Signals:
    """SIGTERM/SIGINT set ``stop`` and remember which one came (main thread only)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.caught: list[str] = []
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        self.caught.append(signal.Signals(signum).name)
        self.stop.set()

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def exit_code(self) -> int:
        return SIGNAL_EXIT.get(self.caught[0], 130) if self.caught else 0


def run(args: argparse.Namespace) -> int:
    from cvactive.errors import ConfigError
    from cvactive.harvest import harvest_feeds
    from cvactive.harvest.feeds import Restart, run_feed
    from cvactive.harvest.runner import HarvestRun

    if args.max_restarts < -1:
        raise ConfigError(f"--max-restarts must be -1 (never give up) or more, got {args.max_restarts}")
    restart = Restart(args.restart_wait, None if args.max_restarts < 0 else args.max_restarts)
    options, detector = load_options(args, args.source)
    options = options.of(options, log_every=args.log_every)
    if len(args.source) > 1 or options.site_budget is not None:
        _logging(args)
        with _Signals() as signals:
            site = harvest_feeds(
                args.source,
                args.out,
                detector=detector,
                restart=restart,
                fresh=args.fresh,
                stop=signals.stop,
                handle_signals=False,
                command="feed",
                options=options,
            )
        return _site_exit(site, signals)
    harvest_run = HarvestRun.create(args.source[0], args.out, options, detector=detector)
    _logging(args)  # after the checks: bad input stays one line on stderr
    with _Signals() as signals:
        result = run_feed(harvest_run, restart=restart, stop=signals.stop, fresh=args.fresh, command="feed")
    if signals.caught:
        log.info("stopped by %s; state saved in %s", signals.caught[0], args.out)
        return signals.exit_code()
    return 1 if result.gave_up or _file_failed(result.summary) else 0


def _file_failed(summary: Any) -> bool:
    """A video file of the source failed (could not be opened, truncated): a live stream's drops do not count."""
    from cvactive.sources import is_stream

    return any(not is_stream(str(path)) for path, _reason in summary.report.failures)


def _site_exit(site: Any, signals: _Signals) -> int:
    """Log how each source of a several-source feed ended; the exit code."""
    from cvactive.errors import CvactiveError

    errors = list(site.errors.values())
    if errors and len(errors) == len(site.folders) and all(isinstance(e, CvactiveError) for e in errors):
        raise errors[0]  # the same bad input for every source: one line, exit 2
    for source, err in site.errors.items():
        log.error("%s: failed: %s", source, err)
    failed = any(_file_failed(r.summary) for r in site.feeds.values())
    if site.site_kept_total is not None:
        log.info("site: %d kept under the site budget (all runs)", site.site_kept_total)
    if signals.caught:
        log.info("stopped by %s; states saved under %s", signals.caught[0], site.out)
        return signals.exit_code()
    return 1 if errors or failed or any(r.gave_up for r in site.feeds.values()) else 0
