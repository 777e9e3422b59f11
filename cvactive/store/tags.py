"""The tags and names cvactive gives FiftyOne samples, and the tags of a pushed record (pure; no FiftyOne).

The vocabulary of a review: :data:`TO_REVIEW` on every pushed sample, the sample tags a reviewer
adds (:data:`APPROVED`, :data:`REJECTED`), the label tags (:data:`FP`, :data:`WRONG_CLASS`,
:data:`MISSED`), what ``cvactive pull`` leaves (:data:`FINISHED_TAGS`), the field of a sample's
cvactive identity (:data:`KEY_FIELD`) and the saved view of the queue (:data:`REVIEW_VIEW`).
:func:`record_tags` builds a pushed record's tags (round, rules, strategy).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
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


def round_tag(round_: int) -> str:
    """The tag of an active-learning round: ``round-<n>``."""
    return f"round-{int(round_)}"


_TAG_OK = re.compile(r"[^A-Za-z0-9_.:=+-]+")


def clean_tag(value: Any) -> str:
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
    out.extend(f"rule:{clean_tag(r)}" for r in rules)
    strat = strategy if strategy is not None else (selection.strategy if selection is not None else None)
    if strat:
        out.append(f"strategy:{clean_tag(strat)}")
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
