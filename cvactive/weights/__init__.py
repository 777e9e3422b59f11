"""Rebuild a trainable Ultralytics checkpoint from an OpenVINO export of a YOLOv8 detector.

An OpenVINO IR exported by Ultralytics keeps each convolution's module path in its node name
(``__module.model.2.cv1.conv/aten::_convolution/Convolution``) and stores its weights as a
small constant chain (``Constant`` int8 -> ``Convert`` -> optional ``Subtract`` zero point ->
``Multiply`` scale, or plain FP16/FP32 constants); the bias is the constant of the ``Add`` after
the convolution. Batch norm was folded into both at export.

:func:`rebuild_from_openvino` evaluates those chains, loads the folded weights into the matching
``YOLO("yolov8<scale>.yaml")`` model and restores each ``Conv`` block as convolution + batch norm
whose running statistics are re-estimated on calibration images: with per-channel mean ``m`` and
variance ``v`` of the convolution's output, the batch norm gets ``running_mean = m``,
``running_var = v``, ``weight = sqrt(v + eps)`` and ``bias = b + m``, so in eval mode it computes
exactly ``W x + b`` (the export's output) and in train mode it normalises by batch statistics of
the size the layer really sees. The result is an ordinary Ultralytics ``.pt`` that fine-tunes.

The rebuilt checkpoint is cached: a sidecar ``<out>.json`` records a key over the IR files, the
calibration images and the settings, and a second call with the same inputs returns at once.
"""

from cvactive.weights.architecture import YOLOV8_SCALES, calibration_images, match_architecture
from cvactive.weights.ir import find_ir, read_folded_convolutions
from cvactive.weights.pretrained import (
    PRETRAINED_NAME,
    pretrained_available,
    pretrained_checkpoint,
    resolve_model_name,
)
from cvactive.weights.rebuild import REBUILD_VERSION, RebuildResult, rebuild_from_openvino

__all__ = [
    "PRETRAINED_NAME",
    "REBUILD_VERSION",
    "YOLOV8_SCALES",
    "RebuildResult",
    "calibration_images",
    "find_ir",
    "match_architecture",
    "pretrained_available",
    "pretrained_checkpoint",
    "read_folded_convolutions",
    "rebuild_from_openvino",
    "resolve_model_name",
]
