"""Pure conversions between cvactive records and FiftyOne's conventions (no FiftyOne import).

Box conventions:

* cvactive records: absolute pixel ``xyxy`` ``[x1, y1, x2, y2]``.
* FiftyOne ``Detection.bounding_box``: normalised ``[x, y, w, h]`` with a top-left origin.
* YOLO label files: normalised centre ``[cx, cy, w, h]``.
* COCO JSON ``bbox``: absolute pixel ``[x, y, w, h]`` with a top-left origin.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cvactive.record import Selection

log = logging.getLogger(__name__)

#: Tag every pushed sample gets; the ``review-queue`` saved view lists them.
TO_REVIEW = "to-review"
#: Tags a reviewer puts on samples.
APPROVED, REJECTED = "approved", "rejected"
#: Tags a reviewer puts on labels.
FP, WRONG_CLASS, MISSED = "fp", "wrong-class", "missed"
#: Tags ``cvactive pull`` leaves on a reviewed sample: its ground truth was written, or it waits
#: for annotation. A later push does not put such a sample back in the review queue.
LABELED, TO_ANNOTATE = "labeled", "to-annotate"
FINISHED_TAGS = frozenset({LABELED, TO_ANNOTATE})
#: Tag of synthetic images (made by cvactive's synthesis stage).
SYNTHETIC = "synthetic"
#: The field that holds each sample's cvactive identity (``record.key``).
KEY_FIELD = "cva_key"
#: The name of the saved view of samples waiting for review.
REVIEW_VIEW = "review-queue"
PROVENANCE_FILE = "provenance.jsonl"


def coco_to_tlwh(bbox: Iterable[float], width: int, height: int) -> list[float]:
    """COCO pixel ``[x, y, w, h]`` to normalised top-left ``[x, y, w, h]``."""
    x, y, w, h = (float(v) for v in bbox)
    return [x / width, y / height, w / width, h / height]


def round_tag(round_: int) -> str:
    """The tag of an active-learning round: ``round-<n>``."""
    return f"round-{int(round_)}"


_TAG_OK = re.compile(r"[^A-Za-z0-9_.:=+-]+")


def _clean_tag(value: Any) -> str:
    return _TAG_OK.sub("-", str(value)).strip("-")


def record_tags(
    extra: Mapping[str, Any],
    *,
    round_: int | None = None,
    strategy: str | None = None,
    selection: Selection | None = None,
    tags: Iterable[str] = (),
    review: bool = True,
    rules: Iterable[str] = (),
) -> list[str]:
    """The tags of a pushed sample: its round, the rules or strategy that chose it, and
    ``to-review`` when ``review``.

    ``extra`` is the record's :attr:`~cvactive.record.ImageRecord.extra`, ``selection`` its
    :attr:`~cvactive.record.ImageRecord.selection` (a selection file's records have one) and
    ``rules`` the harvest rules of its :attr:`~cvactive.record.ImageRecord.harvested`; an
    explicit ``round_``/``strategy`` wins over ``extra["round"]``/``selection.strategy``.
    """
    out: list[str] = [TO_REVIEW] if review else []
    rnd = round_ if round_ is not None else extra.get("round")
    if rnd is not None:
        out.append(round_tag(int(rnd)))
    out.extend(f"rule:{_clean_tag(r)}" for r in rules)
    strat = strategy if strategy is not None else (selection.strategy if selection is not None else None)
    if strat:
        out.append(f"strategy:{_clean_tag(strat)}")
    out.extend(str(t) for t in tags)
    if extra.get("provenance"):
        out.append(SYNTHETIC)
    return sorted(set(out))


def chosen_for_review(
    strategy: str | None = None, selection: Selection | None = None, rules: Iterable[str] = ()
) -> bool:
    """Whether a record was selected or harvested for review: a strategy is named (``strategy``),
    a selection chose it (``selection``, the record's :attr:`~cvactive.record.ImageRecord.selection`)
    or harvest rules kept it (``rules``, those of its :attr:`~cvactive.record.ImageRecord.harvested`);
    a plain scores file, such as predictions pushed for evaluation, was not."""
    return bool(strategy or selection is not None or tuple(rules))


def merge_tags(old: Iterable[str] | None, new: Iterable[str]) -> list[str]:
    """The union of two tag lists, sorted (pushing again never drops a reviewer's tags)."""
    return sorted(set(old or ()) | set(new))


def provenance_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The sample fields of a provenance line: ``synthetic_parent``, ``synthetic_recipe``, ``synthetic_params``."""
    params = entry.get("params")
    return {
        "synthetic_parent": None if entry.get("parent") is None else str(entry.get("parent")),
        "synthetic_recipe": None if entry.get("recipe") is None else str(entry.get("recipe")),
        "synthetic_params": json.loads(json.dumps(params, default=str)) if isinstance(params, dict) else None,
    }


def read_provenance(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a ``provenance.jsonl`` into absolute image path -> its line (bad lines are logged and skipped)."""
    p = Path(path)
    out: dict[str, dict[str, Any]] = {}
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                image = entry["image"]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                log.warning("%s:%d: not a provenance line (%s); skipped", p, lineno, err)
                continue
            img = Path(str(image))
            if not img.is_absolute():
                img = p.parent / img
            out[str(img.resolve())] = entry
    return out


class ProvenanceIndex:
    """Finds the provenance line of a synthetic image in a ``provenance.jsonl`` beside its data set.

    The file is looked for in the image's folder and up to ``depth`` folders above it (a data
    set root holds ``images/<split>/`` below it); each file is read once.
    """

    def __init__(self, depth: int = 4) -> None:
        self.depth = depth
        self._files: dict[Path, dict[str, dict[str, Any]]] = {}

    def _load(self, folder: Path) -> dict[str, dict[str, Any]]:
        if folder not in self._files:
            f = folder / PROVENANCE_FILE
            self._files[folder] = read_provenance(f) if f.is_file() else {}
        return self._files[folder]

    def lookup(self, image: str | Path) -> dict[str, Any] | None:
        p = Path(image).resolve()
        for folder in list(p.parents)[: self.depth + 1]:
            entry = self._load(folder).get(str(p))
            if entry is not None:
                return entry
        return None
