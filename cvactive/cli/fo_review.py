"""``cvactive review --dataset NAME [--port P]``: the FiftyOne App on the review queue."""

from __future__ import annotations

import argparse
import signal
from typing import Any

LOOPBACK = "127.0.0.1"  # the default address (cvactive.store.review.LOOPBACK; not imported: it loads numpy)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "review",
        help="open the FiftyOne App (remote mode) on a data set's review-queue view and print its URL",
        description="Start the FiftyOne App server without opening a browser and wait until Ctrl-C. "
        "Reviewers tag samples approved/rejected and labels fp/wrong-class/missed, with the Approve, Reject, fp, "
        "wrong-class, missed and Next buttons above an open sample ('How to review' above the grid explains them); "
        "`cvactive pull` reads them.",
    )
    p.add_argument("--dataset", required=True, help="FiftyOne data set name")
    p.add_argument("--port", type=int, default=5151, help="App port, 1-65535 (default 5151)")
    p.add_argument(
        "--address",
        default=LOOPBACK,
        help=f"address to serve on (default {LOOPBACK}: this machine only; any other address needs --expose)",
    )
    p.add_argument(
        "--expose",
        action="store_true",
        help="allow an --address other than loopback. FiftyOne's App has no authentication and serves any file "
        "this process can read (/media?filepath=...) to whoever reaches the port",
    )
    p.add_argument("--view", default="review-queue", help="saved view to open (default review-queue; '' for all)")
    p.set_defaults(func=run)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    import sys

    from cvactive.store.review import LOOPBACKS, exposed_warning, launch_review

    session, url = launch_review(
        args.dataset, port=args.port, address=args.address, view=args.view or None, expose=args.expose
    )
    if args.address not in LOOPBACKS:
        print(exposed_warning(args.address, args.port), file=sys.stderr, flush=True)
    # Ctrl-C and SIGTERM stop the App. SIGINT explicitly too: a process started in the background of a
    # script (or by a parent that ignores it) inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt, so the App could only be killed.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    print(f"FiftyOne App for {args.dataset!r} at {url}  (Ctrl-C to stop)", flush=True)
    try:
        session.wait(-1)
    except KeyboardInterrupt:
        print("stopping the App", flush=True)
    finally:
        session.close()
    return 0
