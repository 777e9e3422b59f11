"""Monte Carlo dropout: ``mc_variance`` and ``mc_bald`` (PyTorch models only).

YOLOv8/11 have no dropout layers, so cvactive puts one on the detection head's input features
(P3, P4, P5): a forward pre-hook on the ``Detect`` head keeps the features of the ordinary
forward pass, then the head alone runs ``T`` more times on inverted-dropout copies of them
(keep each feature with probability ``1 - p``, scale by ``1 / (1 - p)``). The backbone and
neck run once, so the cost is one forward pass plus ``T + 1`` head passes plus one NMS, not
``T`` whole forward passes (``tools/bench_measures.py`` measures both).

Every pass is read at the anchors the clean pass kept after NMS, so the ``T`` class-score rows
of a box are matched exactly (same anchor, same box) without re-running NMS per pass. Per box:

* ``mc_variance``: ``4 * Var_t[s_t]`` of the score of the box's class over the passes
  (a score in [0, 1] has variance at most 1/4, so this lies in [0, 1]);
* ``mc_bald``: the mutual information ``H(mean_t p_t) - mean_t H(p_t)`` of the normalised
  class distributions (BALD, Houlsby et al. 2011), in bits over ``log2(C)``.

With ``p = 0`` every pass equals the clean one and both measures are exactly 0. The dropout
masks come from a ``torch.Generator`` seeded from ``rng``, never the global RNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cvactive._random import as_rng
from cvactive.consistency.divergence import floor_rounding, mutual_information
from cvactive.errors import ConfigError, ModelError
from cvactive.record import ImageRecord

if TYPE_CHECKING:
    from cvactive.detect.model import Detector


def seed_from(rng: int | np.random.Generator | None) -> int:
    """A 63-bit seed from an int, a numpy Generator, or fresh entropy for ``None``."""
    gen = as_rng(rng)
    return int(gen.integers(0, 2**63 - 1))


def mc_box_scores(pass_scores: np.ndarray, class_id: np.ndarray) -> dict[str, np.ndarray]:
    """Per-box MC-dropout measures from the ``(T, N, C)`` class-score rows of ``T`` passes."""
    s = np.asarray(pass_scores, np.float64)
    if s.ndim != 3:
        raise ValueError(f"pass_scores must be (T, N, C), got shape {s.shape}")
    n = s.shape[1]
    if n == 0:
        return {"mc_variance": np.zeros(0), "mc_bald": np.zeros(0)}
    top = s[:, np.arange(n), np.asarray(class_id, np.int64)]
    variance = floor_rounding(np.clip(4.0 * top.var(axis=0), 0.0, 1.0))
    return {"mc_variance": variance, "mc_bald": mutual_information(s)}


class MCDropout:
    """Dropout on a PyTorch detector's head features, ``passes`` times per image.

    Args:
        detector: a :class:`~cvactive.detect.model.Detector` of a ``.pt`` or ``.yaml`` model.
        passes: ``T``, the dropout passes per image (at least 2).
        p: dropout probability in [0, 1).
        rng: seed or Generator of the dropout masks.
        temperature: calibration temperature applied to every pass's scores (1 = none).
    """

    def __init__(
        self,
        detector: Detector,
        *,
        passes: int = 10,
        p: float = 0.2,
        rng: int | np.random.Generator | None = None,
        temperature: float = 1.0,
    ) -> None:
        import torch

        if not detector.is_pytorch:
            raise ModelError(
                f"MC dropout needs a PyTorch model (.pt or .yaml); {detector.model_path!r} is an exported "
                f"{getattr(detector.backend, 'format', 'non-PyTorch')} model. Drop mc_variance/mc_bald or use the .pt"
            )
        if passes < 2:
            raise ConfigError(f"MC dropout needs at least 2 passes, got {passes}")
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"dropout probability must lie in [0, 1), got {p}")
        head = detector.head()
        if head is None:
            raise ModelError(f"cannot find the detection head of {detector.model_path!r}")
        self.detector, self.passes, self.p, self.temperature = detector, int(passes), float(p), float(temperature)
        self.head: Any = head
        self._feats: list[Any] | None = None
        self._gen = torch.Generator(device=detector.device)
        self._gen.manual_seed(seed_from(rng))
        self._handle = self.head.register_forward_pre_hook(self._capture)

    def _capture(self, _module: Any, inputs: tuple[Any, ...]) -> None:
        maps = inputs[0] if isinstance(inputs[0], (list, tuple)) else list(inputs)
        self._feats = list(maps)

    def close(self) -> None:
        """Remove the hook from the detector's head."""
        self._handle.remove()

    def _head(self, feats: Sequence[Any]) -> Any:
        out = self.head.forward(list(feats))  # .forward: no hooks, so the captured features stay
        return out[0] if isinstance(out, (list, tuple)) else out

    def _drop(self, x: Any) -> Any:
        import torch

        if self.p == 0.0:
            return x
        keep = torch.rand(x.shape, generator=self._gen, device=x.device) >= self.p
        return x * keep.to(x.dtype) / (1.0 - self.p)

    def predict(self, images: Sequence[np.ndarray], metas: Sequence[Any] | None = None) -> list[ImageRecord]:
        """The detector's records for ``images``, each with ``mc_variance`` and ``mc_bald`` in box_scores."""
        records = self.detector.predict(images, metas)
        for record, scores in zip(records, self.pass_scores(records)):
            record.box_scores.update(mc_box_scores(scores, record.class_id))
        return records

    def pass_scores(self, records: Sequence[ImageRecord]) -> list[np.ndarray]:
        """``(T, N, C)`` class-score rows of each record's boxes over the dropout passes.

        Must follow the detector's ``predict`` of exactly these records: it reuses the head
        features that call captured.
        """
        import torch

        from cvactive.consistency.temperature import apply_temperature

        if not records:
            return []
        if self._feats is None or self._feats[0].shape[0] != len(records):
            raise ModelError("MC dropout found no head features of this batch; call detector.predict first")
        det = self.detector
        nc = len(det.names)
        feats, self._feats = self._feats, None
        with torch.inference_mode():
            clean = self._head(feats)
            _, idxs = det.nms(clean)
            passes = [self._head([self._drop(f) for f in feats])[:, 4 : 4 + nc, :] for _ in range(self.passes)]
            cls = torch.stack(passes)  # (T, B, C, A)
        out = []
        for b, (record, idx) in enumerate(zip(records, idxs)):
            idx = idx.view(-1).long()
            if idx.numel() != len(record):
                raise ModelError(f"MC dropout kept {idx.numel()} boxes where the detector kept {len(record)}")
            rows = cls[:, b][:, :, idx].permute(0, 2, 1).float().cpu().numpy()  # (T, N, C)
            out.append(apply_temperature(rows, self.temperature) if self.temperature != 1.0 else rows)
        return out
