"""``cvactive round``: a project folder and one resumable command per step of a real active-learning round.

select (score the pool, pick the batch, push it) -> annotate (send it to Label Studio with
pre-labels) -> collect (finished annotations into the ground truth and the labeled YOLO set) ->
check (the health gate) -> train (fine-tune) -> evaluate (per-class AP on the fixed split, stored
as the round's FiftyOne evaluation, the history and its plot). See docs/round.md.
"""

from cvactive.round.project import (
    STEPS,
    GateFailed,
    Project,
    RoundOrderError,
    Settings,
    Status,
    check_order,
    init_project,
    next_step,
    open_project,
)
from cvactive.round.steps import Pending, run_next, run_step, status

__all__ = [
    "STEPS",
    "GateFailed",
    "Pending",
    "Project",
    "RoundOrderError",
    "Settings",
    "Status",
    "check_order",
    "init_project",
    "next_step",
    "open_project",
    "run_next",
    "run_step",
    "status",
]
