#!/usr/bin/env python
"""The learning-curve study: active-learning strategies against seeded random, on real training.

Runs ``cvactive loop`` on a data set into a work folder (checkpoints and weights stay there,
out of git; re-running resumes), then copies the results that belong in git (rounds CSV/JSON,
summary, learning-curve PNG, settings) into ``benchmarks/results/<name>/`` together with the
exact command that made them.

    .venv/bin/python tools/learning_curve_study.py porch      # the built-in porch data, CPU sized
    .venv/bin/python tools/learning_curve_study.py aquarium   # ../shared/assets/aquarium, CPU sized
    .venv/bin/python tools/learning_curve_study.py aquarium --device 0 --imgsz 640 --epochs 60   # on a GPU

Extra arguments are passed to ``cvactive loop`` and override the preset.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PRESETS: dict[str, list[str]] = {
    # 240 pool images, 80 eval images; labels 40 -> 120 over two rounds.
    "porch": shlex.split(
        "--strategies random,uncertainty,hybrid --seeds 3 --initial 40 --budget 40 --rounds 2 "
        "--model pico --epochs 40 --imgsz 256"
    ),
    # 448 pool images (train), 127 eval images (valid); CPU sized: small images, few epochs.
    "aquarium": shlex.split(
        "--strategies random,uncertainty,hybrid --seeds 3 --initial 60 --budget 60 --rounds 2 "
        "--model pico --epochs 30 --imgsz 320"
    ),
}
KEEP = ("rounds.csv", "rounds.json", "summary.json", "summary.md", "learning_curves.png", "settings.json")


def data_for(name: str) -> Path:
    from cvactive.assets import asset, data_dir
    from cvactive.porch import write_dataset

    if name == "porch":
        return write_dataset(data_dir() / "porch", video=False)
    path = asset("aquarium/data.yaml")
    if path is None:
        raise SystemExit("aquarium needs ../shared/assets/aquarium (or CVACTIVE_ASSETS)")
    return path


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in PRESETS:
        print(__doc__)
        return 2
    name, extra = sys.argv[1], sys.argv[2:]
    from cvactive.assets import data_dir

    data = data_for(name)
    work = data_dir() / "studies" / name
    cmd = [str(ROOT / ".venv" / "bin" / "cvactive"), "loop", "--data", str(data), "--out", str(work)]
    cmd += PRESETS[name] + extra
    print("$", shlex.join(cmd), flush=True)
    code = subprocess.call(cmd)
    if code != 0:
        return code
    dest = ROOT / "benchmarks" / "results" / name
    dest.mkdir(parents=True, exist_ok=True)
    for file in KEEP:
        shutil.copy2(work / file, dest / file)
    rel = ["tools/learning_curve_study.py", name, *extra]
    (dest / "COMMAND.md").write_text(
        "Made by\n\n```bash\n.venv/bin/python "
        + shlex.join(rel)
        + "\n```\n\nwhich ran\n\n```bash\n"
        + shlex.join(["cvactive", *cmd[1:]]).replace(str(ROOT) + "/", "")
        + "\n```\n"
    )
    print(f"results copied to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
