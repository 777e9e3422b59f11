"""``cvactive weights from-openvino IR_DIR --out FILE.pt [--calib IMAGES]``: a trainable checkpoint from an export."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "weights",
        help="rebuild a trainable Ultralytics .pt from an OpenVINO export (INT8/FP16/FP32) of a YOLOv8 detector",
        description="Model weights. 'from-openvino' reads the folded convolution weights of an Ultralytics "
        "OpenVINO export, loads them into the matching YOLOv8 architecture and re-estimates batch norm on "
        "calibration images, so the result fine-tunes like any pretrained .pt. Cached: the same inputs "
        "return at once.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    rebuild = actions.add_parser(
        "from-openvino",
        help="rebuild a .pt from an OpenVINO export folder",
        description="Rebuild a trainable .pt from an Ultralytics OpenVINO export of a YOLOv8 detection model.",
    )
    rebuild.add_argument("ir", help="the export folder (*_openvino_model/) or its .xml")
    rebuild.add_argument("--out", required=True, help="the checkpoint to write (FILE.pt; FILE.pt.json records how)")
    rebuild.add_argument(
        "--calib",
        default=None,
        help="calibration images for batch norm: a folder or a .txt list (default: the shared coco128 train images)",
    )
    rebuild.add_argument(
        "--calib-limit", default="128", help="use at most N calibration images, N >= 1, or 'all' (default 128)"
    )
    rebuild.add_argument("--imgsz", type=int, default=None, help="calibration size (default: the export's)")
    rebuild.add_argument("--scale", default=None, help="YOLOv8 scale n/s/m/l/x (default: the one that matches)")
    rebuild.add_argument("--force", action="store_true", help="rebuild even when the cached .pt matches")
    rebuild.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cvactive.assets import asset
    from cvactive.errors import ConfigError
    from cvactive.outputs import check_file_output
    from cvactive.weights import rebuild_from_openvino

    limit = calib_limit(args.calib_limit)
    check_file_output(args.out, inputs=[args.ir])  # before the IR is read
    check_file_output(args.out + ".json", inputs=[args.ir], what="--out's record")
    calib = args.calib or asset("coco128/images/train2017")
    if calib is None:
        raise ConfigError("give --calib IMAGES (a folder or a .txt list): the shared coco128 images are not here")
    result = rebuild_from_openvino(
        args.ir,
        args.out,
        calib=calib,
        calib_limit=limit,
        imgsz=args.imgsz,
        scale=args.scale,
        force=args.force,
    )
    how = "cached, unchanged" if result.cached else f"rebuilt in {result.seconds:.1f} s"
    print(
        f"{result.weights}: yolov8{result.scale}, {result.classes} classes, {result.convolutions} convolutions, "
        f"batch norm from {result.calibration_images} calibration images ({how})"
    )
    return 0


def calib_limit(text: str) -> int | None:
    """``--calib-limit``: a number of images (at least 1), or ``all`` (``None``)."""
    from cvactive.errors import ConfigError

    if text.strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"--calib-limit {text!r}: give a number of calibration images (1 or more), or 'all'")
    return value
