"""The one way cvactive draws a figure: a matplotlib ``Figure`` object, saved to a file.

``pyplot`` keeps global state (the current figure, the backend); calling ``matplotlib.use``
from a library switches a user's notebook backend under them. A bare
:class:`matplotlib.figure.Figure` needs neither: it is drawn by the Agg canvas when saved and
freed when the last reference goes, so plotting here has no side effect outside the file.

    fig = new_figure((6, 4))
    ax = fig.subplots()
    ax.plot(x, y)
    save_figure(fig, out / "curve.png", dpi=100)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def new_figure(figsize: tuple[float, float]) -> Any:
    """A fresh ``matplotlib.figure.Figure`` of ``figsize`` inches (no pyplot, no backend switch)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def save_figure(fig: Any, path: str | Path, *, dpi: int = 100) -> Path:
    """Lay ``fig`` out tightly and write it to ``path`` (parent folders made); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(p, dpi=dpi)
    return p


def colormap(name: str) -> Any:
    """A registered colormap by name (``pyplot.get_cmap`` without pyplot)."""
    import matplotlib

    return matplotlib.colormaps[name]
