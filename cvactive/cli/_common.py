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
    """--model, --imgsz, --conf, --iou, --device, --batch."""
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


def make_detector(args: argparse.Namespace, **overrides: Any) -> Any:
    """Build the :class:`~cvactive.detector.Detector` the options describe."""
    from cvactive.detector import Detector

    kwargs = {"imgsz": args.imgsz, "conf": args.conf, "iou": args.iou, "device": args.device}
    kwargs.update(overrides)
    return Detector(args.model or default_model(), **kwargs)


def add_scorer_options(parser: argparse.ArgumentParser) -> None:
    """--measures, --aggregations, --threshold, --if-empty, --topk."""
    from cvactive.measures import AGGREGATIONS, MEASURES

    parser.add_argument("--measures", default=",".join(MEASURES), help="comma-separated measures (default: all)")
    parser.add_argument(
        "--aggregations", default=",".join(AGGREGATIONS), help="comma-separated aggregations (default: all)"
    )
    parser.add_argument("--threshold", type=float, default=0.5, help="threshold of threshold_closeness (0.5)")
    parser.add_argument("--if-empty", type=float, default=0.0, help="image score of a frame with no boxes (0)")
    parser.add_argument("--topk", type=int, default=3, help="k of the topk aggregation (3)")


def make_scorer(args: argparse.Namespace) -> Any:
    from cvactive.scoring import Scorer

    return Scorer(
        measures=tuple(m for m in args.measures.split(",") if m),
        aggregations=tuple(a for a in args.aggregations.split(",") if a),
        threshold=args.threshold,
        if_empty=args.if_empty,
        topk=args.topk,
    )
