"""The per-class AP history of :mod:`cvactive.store.evaluate`: rounds merged, AP drops between
rounds, and the PNG of each class's AP over rounds. Pure helpers: no FiftyOne.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cvactive.errors import StoreError


def ap_drops(previous: dict[str, Any], current: dict[str, Any], threshold: float, key: str = "ap") -> list[str]:
    """Warnings for each class whose ``key`` AP fell by more than ``threshold`` from ``previous`` to ``current``."""
    out = []
    for name, row in current.items():
        before = (previous.get(name) or {}).get(key)
        now = row.get(key)
        if before is None or now is None:
            continue
        if before - now > threshold:
            out.append(f"class {name!r}: AP fell from {before:.3f} to {now:.3f} (more than {threshold:g})")
    return out


def merge_history(history: Sequence[dict[str, Any]], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The history with ``entry`` in place of any earlier entry of the same round, sorted by round."""
    kept = [h for h in history if int(h["round"]) != int(entry["round"])]
    return sorted([*kept, entry], key=lambda h: int(h["round"]))


def previous_round(history: Sequence[dict[str, Any]], round_: int) -> dict[str, Any] | None:
    """The latest history entry of a round before ``round_``."""
    earlier = [h for h in history if int(h["round"]) < round_]
    return max(earlier, key=lambda h: int(h["round"])) if earlier else None


def plot_history(history: Sequence[dict[str, Any]], out: str | Path, *, title: str = "", max_classes: int = 12) -> Path:
    """Draw per-class AP50:95 (solid) and AP50 (dotted) over rounds, plus mAP (black), to a PNG.

    With more than ``max_classes`` classes only the ``max_classes`` with the lowest AP50:95 in the
    last round are drawn (the ones to watch), each in a colour of its own.

    Uses a matplotlib ``Figure`` of its own (no pyplot state, no backend switch).
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not history:
        raise StoreError("no evaluation rounds to plot")
    rounds = [int(h["round"]) for h in history]
    classes = sorted({c for h in history for c in h["per_class"]})
    shown_note = ""
    if len(classes) > max_classes:  # 80 lines and a legend taller than the plot help nobody
        latest = history[-1]["per_class"]
        valued = [c for c in classes if (latest.get(c) or {}).get("ap") is not None]
        classes = sorted(valued, key=lambda c: (float(latest[c]["ap"]), c))[:max_classes]
        shown_note = f" ({len(classes)} lowest of the last round; all in history.json)"
    fig = Figure(figsize=(8, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
    for i, name in enumerate(classes):
        color = cmap(i % cmap.N)
        ap = [_nan((h["per_class"].get(name) or {}).get("ap")) for h in history]
        ap50 = [_nan((h["per_class"].get(name) or {}).get("ap50")) for h in history]
        ax.plot(rounds, ap, marker="o", color=color, label=name)
        ax.plot(rounds, ap50, linestyle=":", color=color)
    ax.plot(rounds, [_nan(h.get("map")) for h in history], marker="s", color="black", linewidth=2, label="mAP")
    ax.set_xlabel("round")
    ax.set_ylabel("AP50:95 (solid), AP50 (dotted)")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(rounds)
    ax.set_title((title or "per-class AP by round") + shown_note, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)
