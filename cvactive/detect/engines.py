"""Inference engines for :class:`cvactive.detect.pipeline.Pipeline` (the Ultralytics/OpenVINO edge).

:class:`Engine` is what the pipeline needs of one; :func:`engine_for` picks a detector's.

* :class:`OpenVINOEngine`: an OpenVINO IR with a static ``(1, 3, H, W)`` input, compiled a
  second time for throughput. ``PrePostProcessor`` folds the ``uint8 -> float32`` conversion,
  BGR -> RGB, the NHWC -> NCHW layout change and the ``/ 255`` scaling into the compiled graph,
  so a worker only letterboxes (in ``uint8``) and the network takes the letterboxed bytes as
  they are. Requests run on an ``AsyncInferQueue`` under the ``THROUGHPUT`` performance hint
  (several CPU streams at once), twice as many requests as the hint's optimal number; each
  finished request's output is copied out in its callback and handed back to the pipeline.
* :class:`BatchedEngine`: every other model (PyTorch on CPU or CUDA, ONNX, OpenVINO with a
  dynamic input, ...). Chunks of ``batch`` images go through the detector's own Ultralytics
  preprocessing and forward pass, one batch at a time; the pipeline overlaps decoding,
  letterboxing, NMS and scoring with it. With CUDA the workers also move the batch to the GPU.

Both produce the same records as :meth:`cvactive.detect.model.Detector.predict`: the letterbox is
the predictor's own, and the raw output goes through :meth:`Detector.to_records` (Ultralytics'
``non_max_suppression(..., return_idxs=True)``, or its NumPy twin :mod:`cvactive.detect.nms` on the
OpenVINO engine's arrays, and the full class-score row of each kept box).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from cvactive.errors import ModelError

if TYPE_CHECKING:
    from cvactive.detect.model import Detector
    from cvactive.record import ImageRecord
    from cvactive.sources import FrameMeta

#: Called by an engine when a submitted chunk's inference ends: ``(output, None)`` or ``(None, error)``.
Done = Callable[[Any, "BaseException | None"], None]


class Engine(Protocol):
    """What the pipeline needs of an inference engine."""

    #: Images per inference call; the pipeline cuts the input into chunks of this size.
    batch: int
    #: Chunks the engine can hold in flight at once (its asynchronous requests; 1 if synchronous).
    depth: int
    #: Prepare chunks on the pipeline's reader thread rather than handing each to a worker (a
    #: preparation cheaper than the hand-over: one image's letterbox).
    prepare_inline: bool

    def prepare(self, images: Sequence[np.ndarray]) -> Any:
        """A chunk of BGR ``uint8`` images as the engine's input. Thread-safe (worker threads)."""

    def submit(self, prepared: Any, done: Done) -> None:
        """Start inference on one prepared chunk and call ``done`` when it ends.

        Called from one thread, in input order; may block while every request is busy.
        """

    def drain(self) -> None:
        """Wait for every submitted chunk's ``done``."""

    def finish(self, output: Any, shapes: Sequence[tuple[int, int]], metas: Sequence[FrameMeta]) -> list[ImageRecord]:
        """Records of one chunk from its inference output (NMS, class-score rows). Thread-safe."""


class BatchedEngine:
    """Synchronous batches through the detector's Ultralytics predictor (any backend).

    Args:
        detector: the loaded detector.
        batch: images per forward pass. The letterbox of a batch depends on its members (a
            PyTorch model letterboxes a batch of same-shaped images to the smallest stride
            multiple), so records equal :meth:`Detector.predict` on the same batches.
    """

    depth = 1
    prepare_inline = False

    def __init__(self, detector: Detector, batch: int = 8) -> None:
        if batch < 1:
            raise ModelError(f"batch must be at least 1, got {batch}")
        self.detector, self.batch = detector, int(batch)

    def prepare(self, images: Sequence[np.ndarray]) -> Any:
        """The batch tensor ``(B, 3, H, W)`` float, on the model's device."""
        import torch

        with torch.inference_mode():
            return self.detector.preprocess(images)

    def submit(self, prepared: Any, done: Done) -> None:
        """Run the forward pass now; ``done((raw, embeddings, (H, W)), None)``."""
        try:
            raw, feats = self.detector.forward(prepared)
        except Exception as err:
            done(None, err)
            return
        done((raw, feats, (int(prepared.shape[2]), int(prepared.shape[3]))), None)

    def drain(self) -> None:
        """Nothing in flight: :meth:`submit` is synchronous."""

    def finish(self, output: Any, shapes: Sequence[tuple[int, int]], metas: Sequence[FrameMeta]) -> list[ImageRecord]:
        raw, feats, input_hw = output
        return self.detector.to_records(raw, input_hw, shapes, metas, feats)


class OpenVINOEngine:
    """An OpenVINO IR on an ``AsyncInferQueue``, conversions folded into the graph.

    Args:
        detector: the loaded detector (its letterbox, thresholds and class names).
        xml: the IR's ``.xml`` file; its input must be static ``(1, 3, H, W)``.
        device: OpenVINO device name (``CPU``, ``GPU``, ``AUTO``).
        hint: OpenVINO ``PERFORMANCE_HINT`` (``THROUGHPUT``: several streams at once).
        requests: infer requests in flight. Default: twice the compiled model's optimal number,
            so each CPU stream has a request queued while Python (which needs the GIL) takes the
            output of the one that just ended; with the optimal number alone a stream idles
            meanwhile (on 2 cores: 0.84x of the engine limit against 0.97x on video frames).
    """

    batch = 1
    prepare_inline = True  # a letterbox (0.2-0.3 ms a frame) costs less than a hand-over to a worker

    def __init__(
        self,
        detector: Detector,
        xml: str | Path,
        *,
        device: str = "CPU",
        hint: str = "THROUGHPUT",
        requests: int | None = None,
    ) -> None:
        import openvino as ov

        self.detector = detector
        core = ov.Core()
        model = core.read_model(str(xml))
        dims = _static_input(model)
        if dims is None:
            raise ModelError(f"{xml}: the OpenVINO engine needs a static (1, 3, H, W) input; use BatchedEngine")
        self.input_hw = dims
        self.compiled = core.compile_model(with_input_conversions(model), device, {"PERFORMANCE_HINT": hint})
        self.depth = int(requests or 2 * self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.queue = ov.AsyncInferQueue(self.compiled, self.depth)
        self.queue.set_callback(self._on_done)

    def prepare(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """The letterboxed image as the graph's input: ``(1, H, W, 3)`` BGR ``uint8``."""
        (image,) = images
        boxed = self.detector.letterbox(image)
        if boxed.shape[:2] != self.input_hw:
            raise ModelError(
                f"letterbox gave {boxed.shape[:2]} but {self.detector.model_path} takes {self.input_hw}; "
                f"use --imgsz {max(self.input_hw)}"
            )
        return boxed[None]

    def submit(self, prepared: np.ndarray, done: Done) -> None:
        """Start one request (blocks while every request is busy)."""
        self.queue.start_async({0: prepared}, done)

    def _on_done(self, request: Any, done: Done) -> None:
        # OpenVINO's callback thread: copy the output out of the request, which is reused next;
        # only the columns NMS can keep (a few hundred of 8,400 anchors: less to copy and to sort).
        try:
            output = self.detector.candidates(request.get_output_tensor(0).data)
        except Exception as err:
            done(None, err)
            return
        done(output, None)

    def drain(self) -> None:
        """Wait for every request in flight."""
        self.queue.wait_all()

    def finish(self, output: Any, shapes: Sequence[tuple[int, int]], metas: Sequence[FrameMeta]) -> list[ImageRecord]:
        return self.detector.to_records(output, self.input_hw, shapes, metas)


def with_input_conversions(model: Any) -> Any:
    """``model`` taking ``(N, H, W, 3)`` BGR ``uint8`` and doing float, RGB, NCHW and ``/ 255`` itself."""
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
    return ppp.build()


def _static_input(model: Any) -> tuple[int, int] | None:
    """``(H, W)`` of a static ``(1, 3, H, W)`` input, else ``None``."""
    shape = model.input().get_partial_shape()
    if shape.is_dynamic or len(shape) != 4:
        return None
    n, c, h, w = (int(d.get_length()) for d in shape)
    return (h, w) if n == 1 and c == 3 else None


def openvino_xml(model_path: str | Path) -> Path | None:
    """The ``.xml`` of an OpenVINO model folder or file, or ``None``."""
    path = Path(model_path)
    if path.is_file():
        return path if path.suffix == ".xml" else None
    return next(iter(sorted(path.glob("*.xml"))), None) if path.is_dir() else None


def openvino_device(requested: str | None) -> str:
    """The OpenVINO device Ultralytics would pick: ``intel:gpu`` -> ``GPU``; else CPU alone, or AUTO."""
    import openvino as ov

    if requested and str(requested).lower().startswith("intel"):
        return str(requested).partition(":")[2].upper() or "AUTO"
    return "CPU" if ov.Core().available_devices == ["CPU"] else "AUTO"


#: Each detector's engines by batch size, built once and reused while the detector lives.
_ENGINES: weakref.WeakKeyDictionary[Any, dict[int, Engine]] = weakref.WeakKeyDictionary()
_ENGINES_LOCK = threading.Lock()


def engine_for(detector: Detector, batch: int = 8) -> Engine:
    """The pipeline engine for ``detector`` (built once per detector and batch size, then reused).

    An OpenVINO IR with a static input gets :class:`OpenVINOEngine` (asynchronous requests,
    THROUGHPUT hint; one image per request, so one engine whatever the batch); every other
    model :class:`BatchedEngine`.
    """
    if batch < 1:
        raise ModelError(f"batch must be at least 1, got {batch}")
    with _ENGINES_LOCK:
        built = _ENGINES.setdefault(detector, {})
        for engine in built.values():
            if isinstance(engine, OpenVINOEngine):
                return engine
        if int(batch) not in built:
            built[int(batch)] = _new_engine(detector, int(batch))
        return built[int(batch)]


def _new_engine(detector: Detector, batch: int) -> Engine:
    if getattr(detector.backend, "format", "pt") == "openvino":
        xml = openvino_xml(detector.model_path)
        if xml is not None:
            import openvino as ov

            if _static_input(ov.Core().read_model(str(xml))) is not None:
                return OpenVINOEngine(detector, xml, device=openvino_device(detector.requested_device))
    return BatchedEngine(detector, batch)
