"""The provenance of synthetic images: ``provenance.jsonl`` beside a synthesized data set, read and
turned into sample fields (pure; no FiftyOne).

:mod:`cvactive.synthesis` writes one line per synthetic image (``image``, ``parent``, ``recipe``,
``params``); a push or an import finds an image's line (:class:`ProvenanceIndex`) and stores it as
the fields ``synthetic_parent``, ``synthetic_recipe``, ``synthetic_params`` (:func:`provenance_fields`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The file beside a synthesized data set that holds its images' provenance.
PROVENANCE_FILE = "provenance.jsonl"


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
