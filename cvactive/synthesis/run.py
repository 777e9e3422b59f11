"""Running synthesis jobs: one recipe on one parent with one seed (albumentations, or copy-paste).

Every albumentations call goes through :mod:`cvactive.synthesis._albu`, handed in as ``albu`` so
that importing this module needs no albumentations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cvactive.synthesis.copypaste import Patch, paste
from cvactive.synthesis.images import ImageCache
from cvactive.synthesis.plan import Job
from cvactive.yolodata import YoloItem

#: Seeds tried per job (``seed``, ``seed + 1``, ...) before it is dropped.
MAX_ATTEMPTS = 3

#: A synthetic image: RGB pixels ``(H, W, 3)``, pixel ``xyxy`` boxes ``(N, 4)``, classes ``(N,)``, applied params.
Made = tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]


@dataclass
class JobRunner:
    """Runs jobs over the parent images, decoding each image and building each recipe's pipeline once.

    Attributes:
        items: the parent images (indexed by :attr:`Job.parent`).
        instances: per class, every ``(item, box)`` copy-paste may cut.
        albu: the :mod:`cvactive.synthesis._albu` module.
    """

    items: Sequence[YoloItem]
    instances: dict[int, list[tuple[int, int]]]
    albu: Any
    cache: ImageCache = field(default_factory=ImageCache)
    composes: dict[str, Any] = field(default_factory=dict)

    def make(self, job: Job) -> tuple[Made | None, int]:
        """The job's image, trying up to :data:`MAX_ATTEMPTS` seeds; ``(None, last seed)`` when every one failed."""
        result = None
        job_seed = job.seed
        for attempt in range(MAX_ATTEMPTS):
            job_seed = job.seed + attempt
            result = self.run(job, job_seed)
            if result is not None:
                break
        return result, job_seed

    def run(self, job: Job, seed: int) -> Made | None:
        """One synthetic image, or ``None`` when nothing worth labeling remains."""
        parent = self.items[job.parent]
        image = self.cache.get(parent.image)
        h, w = image.shape[:2]
        boxes = parent.xyxy(w, h)
        recipe = job.recipe
        if recipe.kind == "copy_paste":
            return self.run_paste(job, image, boxes, parent.classes, seed)
        if recipe.name not in self.composes:
            self.composes[recipe.name] = self.albu.build_compose(
                recipe.pipeline,
                min_visibility=recipe.bbox.min_visibility,
                min_area=recipe.bbox.min_area,
                clip=recipe.bbox.clip,
                seed=seed,
            )
        res = self.albu.apply(self.composes[recipe.name], image, boxes, parent.classes, seed=seed)
        if len(parent.classes) and not len(res["classes"]):
            return None
        params = {"transforms": res["params"], "kept_boxes": res["instances"].tolist(), "source_boxes": len(boxes)}
        return res["image"], res["boxes"], res["classes"], params

    def run_paste(self, job: Job, image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, seed: int) -> Made | None:
        """Paste 1..``max_instances`` instances of the plan's class, cut from other images, onto ``image``."""
        opts = job.recipe.copy_paste
        assert opts is not None and job.plan.class_id is not None
        c = job.plan.class_id
        rng = np.random.default_rng(seed)
        pool = [(i, b) for i, b in self.instances.get(c, []) if i != job.parent] or list(self.instances.get(c, []))
        if not pool:
            return None
        k = int(rng.integers(1, opts.max_instances + 1))
        patches, patch_params = self._cut_patches(job, pool, k, rng, seed)
        if not patches:
            return None
        items = self.items
        centre_y = np.array([items[i].boxes[b, 1] for i, b in self.instances[c]], np.float32)
        new_image, new_boxes, new_classes, done = paste(
            image, boxes, classes, patches, rng, opts, centre_y=[centre_y] * len(patches)
        )
        if not done:
            return None
        return new_image, new_boxes, new_classes, {"pastes": done, "patch_transforms": patch_params, "class_id": c}

    def _cut_patches(
        self, job: Job, pool: list[tuple[int, int]], k: int, rng: np.random.Generator, seed: int
    ) -> tuple[list[Patch], list[Any]]:
        """Up to ``k`` patches cut from ``pool`` (``3 k`` tries; tiny boxes are skipped), jittered by the recipe."""
        recipe, opts, c = job.recipe, job.recipe.copy_paste, job.plan.class_id
        assert opts is not None and c is not None
        patches: list[Patch] = []
        patch_params: list[Any] = []
        if recipe.pipeline and recipe.name not in self.composes:
            self.composes[recipe.name] = self.albu.build_image_compose(recipe.pipeline, seed=seed)
        for _ in range(k * 3):
            if len(patches) == k:
                break
            i, b = pool[int(rng.integers(len(pool)))]
            item = self.items[i]
            src = self.cache.get(item.image)
            sh, sw = src.shape[:2]
            x1, y1, x2, y2 = item.xyxy(sw, sh)[b]
            xi1, yi1, xi2, yi2 = (int(v) for v in np.rint([x1, y1, x2, y2]))
            if xi2 - xi1 < opts.min_size or yi2 - yi1 < opts.min_size:
                continue
            pixels = src[yi1:yi2, xi1:xi2]
            if recipe.name in self.composes:
                pixels, applied = self.albu.apply_image(
                    self.composes[recipe.name], np.ascontiguousarray(pixels), seed=int(rng.integers(2**31))
                )
                patch_params.append(applied)
            patches.append(
                Patch(pixels, c, ((xi2 - xi1) / sw, (yi2 - yi1) / sh), str(item.image.resolve()), (xi1, yi1, xi2, yi2))
            )
        return patches, patch_params
