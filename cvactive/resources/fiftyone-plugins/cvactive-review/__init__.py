"""cvactive's review operators for the FiftyOne App (loaded by the App server of `cvactive review`).

Each button applies one verdict through :mod:`cvactive.store.verdicts` to the sample open in the
App (or the selected samples) or to the selected boxes, in the database, then refreshes the App.
"""

from __future__ import annotations

from typing import Any

import fiftyone.operators as foo
import fiftyone.operators.types as types

from cvactive.store.queue import REVIEW_INFO
from cvactive.store.tags import APPROVED, FP, MISSED, REJECTED, WRONG_CLASS
from cvactive.store.verdicts import INSTRUCTIONS, next_in_queue, tag_labels, tag_samples


def _is_cvactive(ctx: Any) -> bool:
    try:
        return bool(ctx.dataset.info.get(REVIEW_INFO))
    except Exception:  # no data set open
        return False


def _samples(ctx: Any) -> list[str]:
    """The sample open in the App, else the samples selected in the grid."""
    if ctx.current_sample:
        return [ctx.current_sample]
    return list(ctx.selected or [])


def _button(ctx: Any, place: Any, label: str, prompt: bool = False) -> Any:
    """A text button (an icon alone would not say what it does), on cvactive's data sets only."""
    if not _is_cvactive(ctx):
        return None
    return types.Placement(place, types.Button(label=label, prompt=prompt))


class _Verdict(foo.Operator):
    op_name = ""
    tag = ""
    title = ""
    icon = "label"
    help = ""

    @property
    def config(self) -> Any:
        return foo.OperatorConfig(
            name=self.op_name,
            label=self.title,
            description=self.help,
            icon=self.icon,
        )

    def resolve_placement(self, ctx: Any) -> Any:
        return _button(ctx, types.Places.SAMPLES_VIEWER_ACTIONS, self.title)


class _SampleVerdict(_Verdict):
    def execute(self, ctx: Any) -> dict[str, Any]:
        ids = _samples(ctx)
        if not ids:
            ctx.ops.notify(f"open a sample (or select some) to tag it {self.tag}", variant="warning")
            return {"tagged": 0}
        n = tag_samples(ctx.dataset, ids, self.tag)
        ctx.ops.notify(f"{self.tag}: {n} sample(s)", variant="success")
        if ctx.current_sample:
            nxt = next_in_queue(ctx.dataset, ctx.current_sample)
            if nxt:
                ctx.ops.open_sample(id=nxt)
            else:
                ctx.ops.notify("every queued sample has a verdict: run `cvactive pull`", variant="success")
        ctx.ops.reload_samples()
        return {"tagged": n}


class _LabelVerdict(_Verdict):
    sample_fallback = False

    def execute(self, ctx: Any) -> dict[str, Any]:
        labels = list(ctx.selected_labels or [])
        if not labels and not self.sample_fallback:
            ctx.ops.notify(f"click a box first, then {self.title}", variant="warning")
            return {"tagged": 0}
        if labels:
            n = tag_labels(ctx.dataset, labels, self.tag)
            ctx.ops.clear_selected_labels()
            what = f"{n} box(es)"
        else:
            ids = _samples(ctx)
            if ids:
                ctx.dataset.select(ids).tag_samples(self.tag)
            n = len(ids)
            what = f"{n} sample(s)"
        ctx.ops.notify(f"{self.tag}: {what}", variant="success")
        ctx.ops.reload_samples()
        return {"tagged": n}


class Approve(_SampleVerdict):
    op_name, tag, title, icon = "approve", APPROVED, "Approve", "check_circle"
    help = "tag the sample approved: its shown boxes, less those tagged fp or wrong-class, become ground truth"


class Reject(_SampleVerdict):
    op_name, tag, title, icon = "reject", REJECTED, "Reject", "cancel"
    help = "tag the sample rejected: the predictions are useless; the image goes to full annotation"


class TagFp(_LabelVerdict):
    op_name, tag, title, icon = "tag_fp", FP, "fp", "remove_circle"
    help = "tag the selected boxes fp: not an object"


class TagWrongClass(_LabelVerdict):
    op_name, tag, title, icon = "tag_wrong_class", WRONG_CLASS, "wrong-class", "swap_horiz"
    help = "tag the selected boxes wrong-class: an object, but not of this class"


class TagMissed(_LabelVerdict):
    op_name, tag, title, icon = "tag_missed", MISSED, "missed", "add_box"
    help = "tag the selected boxes (or the sample when none is selected) missed: an object has no box"
    sample_fallback = True


class NextInQueue(foo.Operator):
    @property
    def config(self) -> Any:
        return foo.OperatorConfig(
            name="next_in_queue",
            label="Next in the queue",
            description="open the next queued sample that has no verdict yet",
            icon="skip_next",
        )

    def resolve_placement(self, ctx: Any) -> Any:
        return _button(ctx, types.Places.SAMPLES_VIEWER_ACTIONS, "Next")

    def execute(self, ctx: Any) -> dict[str, Any]:
        nxt = next_in_queue(ctx.dataset, ctx.current_sample)
        if nxt is None:
            ctx.ops.notify("every queued sample has a verdict: run `cvactive pull`", variant="success")
        else:
            ctx.ops.open_sample(id=nxt)
        return {"next": nxt}


class HowToReview(foo.Operator):
    @property
    def config(self) -> Any:
        return foo.OperatorConfig(
            name="how_to_review",
            label="How to review",
            description="what the review tags mean and which button applies each",
            icon="help",
        )

    def resolve_placement(self, ctx: Any) -> Any:
        return _button(ctx, types.Places.SAMPLES_GRID_ACTIONS, "How to review", prompt=True)

    def resolve_input(self, ctx: Any) -> Any:
        inputs = types.Object()
        inputs.md(INSTRUCTIONS, name="instructions")
        return types.Property(inputs, view=types.View(label="How to review"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        return {}


class ReviewHint(foo.Operator):
    @property
    def config(self) -> Any:
        return foo.OperatorConfig(name="review_hint", label="Review hint", on_dataset_open=True, unlisted=True)

    def execute(self, ctx: Any) -> dict[str, Any]:
        if _is_cvactive(ctx):
            ctx.ops.notify(
                "cvactive review: open a sample, tag it with Approve / Reject (boxes: fp, wrong-class, missed); "
                "'How to review' above the grid explains each",
                variant="info",
            )
        return {}


def register(p: Any) -> None:
    for op in (Approve, Reject, TagFp, TagWrongClass, TagMissed, NextInQueue, HowToReview, ReviewHint):
        p.register(op)
