#!/usr/bin/env python
"""The feed harvester from a checkout: the same as the installed command ``cvactive feed``.

    .venv/bin/python tools/harvest_feed.py rtsp://cam-1/stream --config configs/harvest.yaml \\
        --out /data/harvest/cam-1 [--model weights.pt] [--log-every 60] [--log-file cam-1.log]

Kept so deployments that call this path keep working; new ones should run ``cvactive feed``
(``cvactive feed --help`` lists every option and the exit codes).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cvactive.cli import main

if __name__ == "__main__":
    sys.exit(main(["feed", *sys.argv[1:]]))
