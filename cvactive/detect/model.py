"""The Ultralytics detector adapter: images in, :class:`~cvactive.record.ImageRecord` out.

Ultralytics' ``predict`` returns only the post-NMS confidence of each box. Uncertainty needs
the box's whole row of class scores, so :class:`Detector` runs the same preprocessing and
raw forward pass as ``YOLO(model).predict`` (it drives the model's own predictor), then calls
``ultralytics.utils.nms.non_max_suppression(..., return_idxs=True)`` and gathers, for every
kept box, its full ``(C,)`` score row from the pre-NMS output (on NumPy outputs, those of the
OpenVINO engine, :mod:`cvactive.detect.nms` does the same to the bit without torch). The boxes,
classes and confidences are therefore the ones ``predict`` gives under the same ``imgsz``,
``conf`` and ``iou``.

For PyTorch models an image embedding comes from the same forward pass: a pre-hook on the
detection head captures its multi-scale inputs (P3, P4, P5 for YOLOv8/11), each is
global-average-pooled and the results are concatenated (448 numbers for YOLOv8n).
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cvactive._env import offline_defaults
from cvactive._pins import require as require_pinned
from cvactive._ultralytics import private
from cvactive.errors import ModelError
from cvactive.record import ImageRecord
from cvactive.sources import FrameMeta

if TYPE_CHECKING:
    from cvactive.detect.scorer import Scorer
    from cvactive.sources import Source

_MODEL_SUFFIXES = (".pt", ".yaml", ".yml", ".onnx", ".engine", ".torchscript", ".mlpackage", ".tflite")


def _is_yolo_object(model: Any) -> bool:
    """An Ultralytics model object (``YOLO(...)``, ``RTDETR(...)``), told apart without importing Ultralytics."""
    return any(cls.__module__.startswith("ultralytics.") and cls.__name__ == "Model" for cls in type(model).__mro__)


def _check_model_path(model: str | Path) -> str:
    if not isinstance(model, (str, Path)):
        raise ModelError(
            f"model must be a path (.pt, .yaml, an exported model folder) or an Ultralytics model object such as "
            f"YOLO('yolov8n.pt'), got a {type(model).__name__}"
        )
    text = str(model)
    path = Path(text)
    if path.exists():
        return text
    if path.suffix in (".yaml", ".yml") and path.parent == Path("."):
        return text  # a built-in architecture name such as yolov8n.yaml (random init, offline)
    raise ModelError(
        f"model {text!r} does not exist; give a .pt checkpoint, a model .yaml, or an exported "
        "model folder (for example ../shared/assets/weights/yolov8n_int8_openvino_model)"
    )


def _object_name(model: Any) -> str:
    """What to call a model object in messages and records: its checkpoint, else its class."""
    for attr in ("ckpt_path", "model_name"):
        value = getattr(model, attr, None)
        if isinstance(value, (str, Path)) and str(value):
            return str(value)
    return f"{type(model).__name__} object"


class Detector:
    """A YOLO detector that keeps full class-score rows and, optionally, embeddings.

    Args:
        model: a ``.pt`` checkpoint, a model ``.yaml`` (random init, offline) or any exported
            format Ultralytics can run (an OpenVINO model folder needs ``pip install openvino``);
            or an Ultralytics model object already loaded (``YOLO(...)``): it is used as it is, not
            reloaded (so ``trust_checkpoint`` does not apply), and its predictor takes this
            detector's ``imgsz``, ``conf``, ``iou`` and ``max_det``.
        imgsz: inference image size, as in ``predict``.
        conf: confidence threshold of NMS.
        iou: IoU threshold of NMS.
        device: ``None`` picks CUDA when available, else CPU; or any Ultralytics device string.
        max_det: most boxes kept per image.
        embed: also return an image embedding (PyTorch models only).
        trust_checkpoint: a ``.pt`` is loaded weights-only (:mod:`cvactive.weights.checkpoint`),
            and one that needs more (code could run while unpickling it) is refused with
            :class:`~cvactive.weights.checkpoint.UntrustedCheckpointError`; ``True`` loads such a
            file anyway, with a warning. Only for files whose origin you trust.
    """

    def __init__(
        self,
        model: str | Path | Any,
        *,
        imgsz: int = 640,
        conf: float = 0.25,
        iou: float = 0.7,
        device: str | None = None,
        max_det: int = 300,
        embed: bool = False,
        trust_checkpoint: bool = False,
    ) -> None:
        offline_defaults()
        require_pinned("ultralytics")  # the predictor's steps and raw outputs are Ultralytics' internals
        if not 0.0 <= conf <= 1.0 or not 0.0 <= iou <= 1.0:
            raise ModelError(f"conf and iou must lie in [0, 1], got conf={conf}, iou={iou}")
        given: Any = model if _is_yolo_object(model) else None
        if given is not None and getattr(given, "task", "detect") != "detect":
            raise ModelError(f"Detector needs a detection model; this {type(given).__name__} is a {given.task!r} model")
        self.model_path = _object_name(given) if given is not None else _check_model_path(model)
        self.requested_device = device
        self.trust_checkpoint = bool(trust_checkpoint)
        self.imgsz, self.conf, self.iou, self.max_det = int(imgsz), float(conf), float(iou), int(max_det)
        try:
            from ultralytics import YOLO
        except ImportError as err:  # pragma: no cover - ultralytics is a core dependency
            from cvactive.errors import MissingDependencyError

            raise MissingDependencyError("ultralytics is not installed: pip install ultralytics") from err
        from cvactive.weights.checkpoint import UntrustedCheckpointError, checkpoint_loading

        try:
            with checkpoint_loading(trust=self.trust_checkpoint):  # a .pt: weights only, never its code
                self.yolo: Any = given if given is not None else YOLO(self.model_path, task="detect")
                # One call on a blank image builds the model's own predictor (preprocessing, backend,
                # device, warm-up) with exactly the arguments a user's predict() would pass.
                blank = np.zeros((self.imgsz, self.imgsz, 3), np.uint8)
                self.yolo.predict(blank, **self.predict_kwargs(device=device), verbose=False)
        except UntrustedCheckpointError:
            raise
        except ModuleNotFoundError as err:
            raise ModelError(
                f"cannot load {self.model_path!r}: {err}. Exported OpenVINO models need the "
                "openvino package: pip install 'cvactive[openvino]'"
            ) from err
        except Exception as err:
            raise ModelError(f"cannot load model {self.model_path!r}: {err}") from err
        predictor: Any = self.yolo.predictor
        self.predictor = predictor
        self.backend: Any = self.predictor.model
        self.names: dict[int, str] = {int(k): str(v) for k, v in self.yolo.names.items()}
        self.device = str(self.predictor.device)
        self.is_pytorch = getattr(self.backend, "format", "pt") == "pt" or bool(getattr(self.backend, "pt", False))
        if self.is_pytorch and self.device == "cpu":
            _every_core_for_torch()
        self._feats: list[Any] | None = None
        self.embed = bool(embed)
        if self.embed:
            self._install_embedding_hook()

    # -- configuration -----------------------------------------------------------------
    def predict_kwargs(self, device: str | None = None) -> dict[str, Any]:
        """The ``YOLO.predict`` keyword arguments equivalent to this detector's settings."""
        kwargs: dict[str, Any] = {"imgsz": self.imgsz, "conf": self.conf, "iou": self.iou, "max_det": self.max_det}
        if device is not None:
            kwargs["device"] = device
        return kwargs

    def head(self) -> Any | None:
        """The detection head of a PyTorch model (the last layer; its inputs are the P3, P4, P5
        feature maps and its output the raw ``(B, 4 + C, A)``), or ``None`` when there is none."""
        layers = getattr(getattr(self.backend, "model", None), "model", None)
        return None if layers is None or len(layers) == 0 else layers[-1]

    def _install_embedding_hook(self) -> None:
        if not self.is_pytorch:
            raise ModelError(
                f"embeddings need a PyTorch model (.pt or .yaml); {self.model_path!r} is an exported "
                f"{getattr(self.backend, 'format', 'non-PyTorch')} model. Drop --embed or use the .pt"
            )
        head = self.head()
        if head is None:
            raise ModelError(f"cannot find the detection head of {self.model_path!r} to take embeddings from")

        def capture(_module: Any, inputs: tuple[Any, ...]) -> None:
            maps = inputs[0] if isinstance(inputs[0], (list, tuple)) else list(inputs)
            self._feats = [m.float().mean(dim=(2, 3)) for m in maps]

        head.register_forward_pre_hook(capture)

    # -- inference, in steps the pipeline can run on different threads ------------------
    def preprocess(self, images: Sequence[np.ndarray]) -> Any:
        """Letterbox a batch of BGR ``uint8`` images into the model's input tensor ``(B, 3, H, W)``.

        This is the predictor's own preprocessing (letterbox, stack, BGR -> RGB, ``/ 255``), so
        every cvactive path feeds the network exactly what ``predict`` would. Thread-safe.
        """
        return self.predictor.preprocess(list(images))

    def letterbox(self, image: np.ndarray) -> np.ndarray:
        """One BGR ``uint8`` image letterboxed alone, still ``uint8`` ``(H, W, 3)`` BGR. Thread-safe."""
        (boxed,) = self.predictor.pre_transform([image])
        return np.ascontiguousarray(boxed)

    def forward(self, im: Any) -> tuple[Any, np.ndarray | None]:
        """The raw network output ``(B, 4 + C, A)`` of a preprocessed batch, and its embeddings.

        Embeddings ``(B, D)`` come back only with ``embed``. Call from one thread at a time.
        """
        import torch

        self._feats = None
        with torch.inference_mode():
            raw = self.predictor.inference(im)
            if isinstance(raw, (list, tuple)):
                raw = raw[0]
            feats = torch.cat(self._feats, dim=1).cpu().numpy() if self._feats is not None else None
        self._feats = None
        return raw, feats

    def candidates(self, raw: np.ndarray) -> np.ndarray:
        """The columns of one image's raw output that NMS can keep, as a smaller raw output.

        Args:
            raw: the network output of one image, ``(1, 4 + C, A)`` ``float32`` (``A`` anchors).

        Returns:
            ``(1, 4 + C, n + 1)``: the ``n`` anchors whose best class score passes ``conf`` (the
            candidates Ultralytics' NMS starts from), in anchor order, then a column of zeros
            (never a candidate; two when ``n`` is 5) so the last axis is never 6, which NMS would
            read as an end-to-end output. :meth:`to_records` gives the same records on it as on ``raw``:
            NMS sees the same candidate rows in the same order. A copy: ``raw`` may be reused.
        """
        nc = len(self.names)
        best = raw[0, 4 : 4 + nc].max(axis=0)
        keep = np.flatnonzero(best > np.asarray(self.conf, raw.dtype))  # in the output's type, as NMS compares
        k = len(keep)
        out = np.zeros((1, raw.shape[1], k + (2 if k == 5 else 1)), raw.dtype)
        out[0, :, :k] = raw[0][:, keep]
        return out

    def nms(self, raw: Any) -> tuple[list[Any], list[Any]]:
        """Ultralytics' NMS with this detector's ``conf``, ``iou`` and ``max_det`` on a raw output.

        Args:
            raw: the network output, a torch tensor ``(B, 4 + C, A)`` (``A`` anchors).

        Returns:
            per image, the kept boxes ``(n, 6)`` (``xyxy`` in the input's pixels, confidence,
            class) and the ``(n,)`` anchor index each came from (its column of ``raw``).
        """
        non_max_suppression = private("ultralytics.utils.nms").non_max_suppression
        # Ultralytics runs torchvision's NMS when torchvision is imported (every predict imports it) and its
        # own, which orders tied scores differently, when not: load it so every path keeps the same boxes
        # (cvactive.detect.nms, the NumPy path, follows torchvision)
        importlib.import_module("torchvision")
        # max_time_img: no time limit (Ultralytics' default stops NMS mid-batch on a loaded machine,
        # leaving the batch's later images without boxes)
        kept, idxs = non_max_suppression(
            raw,
            self.conf,
            self.iou,
            None,
            False,
            max_det=self.max_det,
            nc=len(self.names),
            max_time_img=math.inf,
            return_idxs=True,
        )
        return kept, idxs

    def to_records(
        self,
        raw: Any,
        input_hw: tuple[int, int],
        shapes: Sequence[tuple[int, int]],
        metas: Sequence[FrameMeta],
        embeddings: np.ndarray | None = None,
    ) -> list[ImageRecord]:
        """NMS on a raw output ``(B, 4 + C, A)`` and one record per image, with full class-score rows.

        Args:
            raw: the network output (a torch tensor, or a numpy array), ``B`` images.
            input_hw: the letterboxed input size ``(H, W)`` the boxes are in.
            shapes: each original image's ``(height, width)`` in pixels.
            metas: each image's provenance.
            embeddings: ``(B, D)`` image embeddings, or ``None``.

        Thread-safe: the pipeline calls it from worker threads.
        """
        from cvactive.detect.nms import kept_numpy, kept_torch

        found = kept_numpy(self, raw, input_hw, shapes) if isinstance(raw, np.ndarray) else None
        if found is None:
            found = kept_torch(self, raw, input_hw, shapes)
        return [
            ImageRecord(
                source=meta.source,
                frame=meta.frame,
                timestamp=meta.timestamp,
                width=w,
                height=h,
                xyxy=boxes,
                confidence=np.clip(conf, 0.0, 1.0),
                class_id=cls,
                class_scores=scores,
                names=self.names,
                embedding=None if embeddings is None else embeddings[b],
            )
            for b, ((boxes, scores, conf, cls), (h, w), meta) in enumerate(zip(found, shapes, metas))
        ]

    def predict(self, images: Source, metas: Sequence[FrameMeta] | None = None, *, batch: int = 8) -> list[ImageRecord]:
        """Detect on images; one record per image or video frame, in order.

        ``images`` is what Ultralytics' ``predict`` takes (:data:`cvactive.sources.Source`): a
        list of BGR ``uint8`` arrays ``(H, W, 3)`` (one forward pass, ``metas`` optional), one
        array, a ``(B, H, W, 3)`` stack, a PIL image, an image path, a list of paths, a folder, a
        glob pattern or a video (read and run in batches of ``batch``; every frame of a video, so
        for a long one prefer :meth:`predict_stream` or :func:`cvactive.detect.stage.iter_scored`).

        The returned records carry ``class_scores`` ``(N, C)`` and, with ``embed``, an
        ``embedding``. They are not yet scored (see :class:`cvactive.detect.scorer.Scorer`).

        Raises:
            SourceError: a path that does not exist or an object that is not an image (strict:
                an unreadable file stops the call rather than being skipped).
        """
        import torch

        from cvactive.in_memory import as_image, source_items
        from cvactive.sources import iter_frames

        if not _is_array_list(images):
            if metas is not None:
                raise ValueError("metas go with a list of arrays; paths and videos carry their own")
            return list(self.predict_stream(iter_frames(images, strict=True), batch))
        arrays = [as_image(image, f"image-{i}") for i, image in enumerate(source_items(images))] if len(images) else []
        if not arrays:
            return []
        images = arrays
        if metas is None:
            metas = [FrameMeta(source=f"image-{i}") for i in range(len(images))]
        if len(metas) != len(images):
            raise ValueError(f"got {len(images)} images but {len(metas)} metadata entries")
        with torch.inference_mode():
            im = self.preprocess(images)
        raw, feats = self.forward(im)
        shapes = [(int(image.shape[0]), int(image.shape[1])) for image in images]
        return self.to_records(raw, (int(im.shape[2]), int(im.shape[3])), shapes, metas, feats)

    def predict_stream(
        self,
        frames: Iterable[tuple[np.ndarray, FrameMeta]],
        batch: int = 8,
        *,
        scorer: Scorer | None = None,
    ) -> Iterator[ImageRecord]:
        """Records for an iterable of ``(image, meta)`` pairs, in input order, batch after batch
        on the calling thread (:func:`cvactive.detect.pipeline.run_detector` runs the same
        batches pipelined: decode, letterbox, inference and NMS at once, the same records).

        Args:
            frames: ``(BGR uint8 image, meta)`` pairs.
            batch: images per forward pass (PyTorch and other batched backends).
            scorer: also score each record.
        """
        if batch < 1:
            raise ModelError(f"batch must be at least 1, got {batch}")
        images: list[np.ndarray] = []
        metas: list[FrameMeta] = []
        for image, meta in frames:
            images.append(image)
            metas.append(meta)
            if len(images) == batch:
                records = self.predict(images, metas)
                yield from records if scorer is None else map(scorer, records)
                images, metas = [], []
        if images:
            records = self.predict(images, metas)
            yield from records if scorer is None else map(scorer, records)


def _every_core_for_torch() -> None:
    """torch's threads to every core, after Ultralytics set one less when it picked the CPU.

    Ultralytics keeps a core for dataloader processes; a detector has none, so that core idled
    while the network ran: scoring 240 HIT-UAV frames at 640 px with a YOLOv8n ``.pt`` on 2 idle
    cores ran at 13.0-13.5 images/s with 1 thread and 22.1-24.4 with 2 (pipelined, 2 workers).
    torch's thread count is one setting for the whole process, as Ultralytics' own choice is.
    """
    import torch

    cores = os.cpu_count() or 1
    if torch.get_num_threads() < cores:
        torch.set_num_threads(cores)


def _is_array_list(images: Any) -> bool:
    """A list (or stack) of in-memory images, the batch :meth:`Detector.predict` runs in one pass."""
    if isinstance(images, np.ndarray):
        return True
    if isinstance(images, (str, Path)) or not isinstance(images, Sequence):
        return False
    return all(not isinstance(i, (str, Path)) for i in images)
