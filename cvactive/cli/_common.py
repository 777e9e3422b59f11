"""Options and helpers several subcommands share."""

from __future__ import annotations

import argparse
from typing import Any

from cvactive.assets import OPENVINO_MODEL, asset
from cvactive.errors import ModelError


def default_model() -> str:
    """The COCO YOLOv8n OpenVINO model from the assets folder, when it is there."""
    path = asset(OPENVINO_MODEL)
    if path is None:
        raise ModelError("no --model given and no default model found; pass --model PATH (.pt, .yaml or export)")
    return str(path)


def add_detector_options(parser: argparse.ArgumentParser) -> None:
    """--model, --imgsz, --conf, --iou, --device, --batch, --trust-checkpoint."""
    parser.add_argument(
        "--model",
        help="a .pt checkpoint, a model .yaml, or an exported model folder "
        "(default: the COCO YOLOv8n OpenVINO model in ../shared/assets)",
    )
    parser.add_argument("--imgsz", type=int, default=640, help="inference image size (default 640)")
    parser.add_argument("--conf", type=float, default=0.25, help="NMS confidence threshold (default 0.25)")
    parser.add_argument("--iou", type=float, default=0.7, help="NMS IoU threshold (default 0.7)")
    parser.add_argument("--device", default=None, help="cpu, 0, cuda:0 ... (default: CUDA if available)")
    parser.add_argument("--batch", type=int, default=8, help="images per forward pass (default 8)")
    add_trust_option(parser)


def add_trust_option(parser: argparse.ArgumentParser) -> None:
    """--trust-checkpoint (every command that takes a .pt)."""
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="a .pt is loaded weights-only (Ultralytics and torch model classes, no code from the file); one "
        "that needs more is refused (exit 2). This flag loads it anyway with full unpickling, which runs any "
        "code inside it: only for files you trust",
    )


def make_detector(args: argparse.Namespace, **overrides: Any) -> Any:
    """Build the :class:`~cvactive.detect.model.Detector` the options describe.

    When ``--measures`` names consistency measures (TTA, committee, MC dropout) or
    ``--calibration`` is given (see :func:`add_consistency_options`), the detector comes wrapped
    in a :class:`~cvactive.consistency.measured.MeasuredDetector` that computes them.
    """
    from cvactive.detect.model import Detector

    kwargs = {"imgsz": args.imgsz, "conf": args.conf, "iou": args.iou, "device": args.device}
    kwargs["trust_checkpoint"] = bool(getattr(args, "trust_checkpoint", False))
    kwargs.update(overrides)
    detector = Detector(args.model or default_model(), **kwargs)
    return with_consistency(args, detector)


def add_consistency_options(parser: argparse.ArgumentParser) -> None:
    """--committee, --mc-passes, --mc-dropout, --mc-seed, --tta-views, --match-iou, --calibration."""
    parser.add_argument(
        "--committee",
        default="",
        help="comma-separated other checkpoints for committee_disagreement (--model is the first member)",
    )
    parser.add_argument("--mc-passes", type=int, default=10, help="MC-dropout passes T for mc_variance/mc_bald (10)")
    parser.add_argument("--mc-dropout", type=float, default=0.2, help="MC-dropout probability on head features (0.2)")
    parser.add_argument("--mc-seed", type=int, default=0, help="seed of the MC-dropout masks (0)")
    parser.add_argument("--tta-views", default="hflip,scale,shift", help="TTA views (default hflip,scale,shift)")
    parser.add_argument("--match-iou", type=float, default=0.3, help="IoU for TTA/committee box matching (0.3)")
    parser.add_argument("--calibration", help="temperature JSON from cvactive calibrate, applied before any measure")


def with_consistency(args: argparse.Namespace, detector: Any) -> Any:
    """``detector`` wrapped for the consistency measures and calibration ``args`` ask for, else itself."""
    from cvactive.measures import CONSISTENCY_MEASURES

    wanted = [m for m in str(getattr(args, "measures", "") or "").split(",") if m in CONSISTENCY_MEASURES]
    calibration = getattr(args, "calibration", None)
    if not wanted and not calibration:
        return detector
    from cvactive.consistency.measured import MeasuredDetector
    from cvactive.consistency.tta import views_by_name

    return MeasuredDetector(
        detector,
        wanted,
        scorer=make_scorer(args) if hasattr(args, "aggregations") else None,
        views=views_by_name([v for v in getattr(args, "tta_views", "hflip,scale,shift").split(",") if v]),
        committee=[w for w in getattr(args, "committee", "").split(",") if w],
        match_iou=getattr(args, "match_iou", 0.3),
        mc_passes=getattr(args, "mc_passes", 10),
        mc_dropout=getattr(args, "mc_dropout", 0.2),
        calibration=calibration,
        rng=getattr(args, "mc_seed", 0),
    )


def add_scorer_options(parser: argparse.ArgumentParser) -> None:
    """--measures, --aggregations, --threshold, --if-empty, --topk."""
    from cvactive.measures import AGGREGATIONS, MEASURES

    parser.add_argument(
        "--measures",
        default=",".join(MEASURES),
        help="comma-separated measures (default: all class-score ones); also tta_localization, tta_consistency, "
        "committee_disagreement, mc_variance, mc_bald (extra model passes)",
    )
    parser.add_argument(
        "--aggregations",
        default=",".join(AGGREGATIONS),
        help="comma-separated aggregations of the boxes' measures per image (default: all): max, mean, sum, topk "
        "(mean of the --topk largest), count (how many boxes score in [0.5, 1] on the measure: <measure>_count "
        "is a number of uncertain boxes, not a score in [0, 1])",
    )
    parser.add_argument("--threshold", type=float, default=0.5, help="threshold of threshold_closeness (0.5)")
    parser.add_argument("--if-empty", type=float, default=0.0, help="image score of a frame with no boxes (0)")
    parser.add_argument("--topk", type=int, default=3, help="k of the topk aggregation (3)")


def make_scorer(args: argparse.Namespace) -> Any:
    from cvactive.detect.scorer import Scorer

    return Scorer(
        measures=tuple(m for m in args.measures.split(",") if m),
        aggregations=tuple(a for a in args.aggregations.split(",") if a),
        threshold=args.threshold,
        if_empty=args.if_empty,
        topk=args.topk,
    )
