"""Plots draw on Figure objects: no pyplot, no backend switch, nothing left open in a user's session."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from cvactive.plots import colormap, new_figure, save_figure

REPO = Path(__file__).resolve().parent.parent


def test_save_figure_writes_a_png_and_makes_its_folder(tmp_path):
    fig = new_figure((3, 2))
    fig.subplots().plot(np.arange(5), np.arange(5) ** 2, color=colormap("tab10")(0))
    path = save_figure(fig, tmp_path / "deep" / "curve.png", dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_health_plots_keep_the_users_backend(tmp_path):
    """A user on another backend (a notebook's inline one, say) keeps it after cvactive draws."""
    script = textwrap.dedent(
        f"""
        import sys
        import matplotlib
        from tests.test_health import make_yolo
        import numpy as np
        from cvactive.health import check_health

        data = make_yolo(__import__("pathlib").Path({str(tmp_path)!r}) / "d", np.random.default_rng(0))
        report = check_health(data, out={str(tmp_path / "out")!r}, progress=False)
        print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules, sorted(report.files))
        """
    )
    env = {
        **os.environ,
        "MPLBACKEND": "svg",
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    backend, pyplot, files = out.stdout.strip().split(" ", 2)
    assert backend == "svg" and pyplot == "False"
    assert all(name in files for name in ("class_counts.png", "centre_heatmaps.png", "box_sizes.png", "brightness.png"))


def test_no_library_module_switches_the_backend_or_uses_pyplot():
    pattern = re.compile(r"matplotlib\.use\(|import matplotlib\.pyplot|from matplotlib import pyplot")
    offenders = [
        str(p.relative_to(REPO))
        for p in sorted((REPO / "cvactive").rglob("*.py"))
        if pattern.search(p.read_text())
        and "store" not in p.parts  # store/ is being moved to Figure objects by its owner
    ]
    assert offenders == []
