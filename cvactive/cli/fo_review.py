"""``cvactive review --dataset NAME [--port P]``: the FiftyOne App on the review queue."""

from __future__ import annotations

import argparse
import signal
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "review",
        help="open the FiftyOne App (remote mode) on a data set's review-queue view and print its URL",
        description="Start the FiftyOne App server without opening a browser and wait until Ctrl-C. "
        "Reviewers tag samples approved/rejected and labels fp/wrong-class/missed; `cvactive pull` reads them.",
    )
    p.add_argument("--dataset", required=True, help="FiftyOne data set name")
    p.add_argument("--port", type=int, default=5151, help="App port (default 5151)")
    p.add_argument(
        "--address", default="localhost", help="address to serve on (default localhost; 0.0.0.0 for all interfaces)"
    )
    p.add_argument("--view", default="review-queue", help="saved view to open (default review-queue; '' for all)")
    p.set_defaults(func=run)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from cvactive.store.review import launch_review

    session, url = launch_review(args.dataset, port=args.port, address=args.address, view=args.view or None)
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
