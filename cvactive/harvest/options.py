"""A harvest's options, checked once: the YAML keys of ``configs/harvest.yaml`` as typed values.

:meth:`HarvestOptions.build` turns the keyword arguments of :func:`cvactive.harvest.harvest`
(mappings from a YAML file, or ready objects) into rules, limits, pacing, dedup, retry and
scorer objects, raising :class:`~cvactive.errors.ConfigError` on the first bad one;
:meth:`HarvestOptions.fingerprint` is the hash a resumed harvest must match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from cvactive._config import check_keys
from cvactive.config import check_kwargs
from cvactive.detect.model import Detector
from cvactive.detect.scorer import Scorer
from cvactive.errors import ConfigError
from cvactive.harvest.budget import Limits, Pacing, SiteBudget
from cvactive.harvest.dedup import Dedup
from cvactive.harvest.feed import Retry
from cvactive.harvest.harvester import Harvester
from cvactive.harvest.rules import Rule, make_rules
from cvactive.harvest.state import fingerprint


def _as(cls: Any, value: Any) -> Any:
    return cls.from_mapping(value) if value is None or isinstance(value, Mapping) else value


def _scorer(value: Mapping[str, Any] | Scorer | None) -> Scorer:
    if isinstance(value, Scorer):
        return value
    options = check_kwargs(Scorer, dict(value or {}), "scorer")
    if "band" in options:
        options["band"] = tuple(options["band"])
    for key in ("measures", "aggregations"):
        if key in options:
            options[key] = tuple(options[key])
    return Scorer(**options)


@dataclass(frozen=True)
class HarvestOptions:
    """Checked harvest options (see :func:`cvactive.harvest.harvest` for each one's meaning)."""

    rules: list[Rule]
    budget: Limits
    pacing: Pacing | None
    dedup: Dedup | None
    retry: Retry
    scorer: Scorer
    stride: int = 1
    jpeg_quality: int = 90
    seed: int = 0
    batch: int = 1
    annotate: bool = True
    checkpoint_seconds: float = 5.0
    log_every: float = 60.0
    fsync: bool = False
    keep_up: bool = True
    workers: int | None = None

    @classmethod
    def build(
        cls,
        *,
        rules: Sequence[Mapping[str, Any] | Rule] = (),
        budget: Mapping[str, Any] | Limits | None = None,
        pacing: Mapping[str, Any] | Pacing | None = None,
        dedup: Mapping[str, Any] | Dedup | None = None,
        retry: Mapping[str, Any] | Retry | None = None,
        scorer: Mapping[str, Any] | Scorer | None = None,
        **plain: Any,
    ) -> HarvestOptions:
        """Check and convert the options; ``plain`` holds the scalar ones (``stride`` ...).

        Raises:
            ConfigError: the first invalid option, naming the valid values.
        """
        check_keys(plain, [f.name for f in fields(cls)], "harvest")
        options = cls(
            rules=make_rules(rules),
            budget=Limits.from_mapping(budget, where="budget"),
            pacing=_as(Pacing, pacing),
            dedup=_as(Dedup, dedup),
            retry=_as(Retry, retry),
            scorer=_scorer(scorer),
            **plain,
        )
        if options.stride < 1 or options.batch < 1:
            raise ConfigError(f"stride and batch must be at least 1, got {options.stride}, {options.batch}")
        workers = options.workers
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 0):
            raise ConfigError(
                f"workers must be 0 (no pipeline), a positive number of threads, or null (the default), got {workers!r}"
            )
        if not 1 <= options.jpeg_quality <= 100:
            raise ConfigError(f"jpeg_quality must lie in [1, 100], got {options.jpeg_quality}")
        return options

    def harvester(self, out: Path, detector: Detector | None, site: SiteBudget | None = None) -> Harvester:
        """A fresh :class:`Harvester` for these options (checks that a needed model is given)."""
        return Harvester(
            out,
            detector,
            self.rules,
            self.budget,
            self.pacing,
            self.dedup,
            self.scorer,
            seed=self.seed,
            jpeg_quality=self.jpeg_quality,
            annotate=self.annotate,
            batch=self.batch,
            fsync=self.fsync,
            site=site,
        )

    @property
    def pipeline_workers(self) -> int:
        """Worker threads of the inference pipeline (``0``: none); ``None`` means the default."""
        from cvactive.detect.pipeline import default_workers

        return default_workers() if self.workers is None else int(self.workers)

    def fingerprint(self, source: str, detector: Detector | None, site: SiteBudget | None = None) -> str:
        """The hash of everything that decides which frames are kept (a resume must match it).

        ``workers`` is left out: it changes when frames are inferred, not what the model says
        about them nor which are kept, so a harvest resumes under another value.
        """
        config = {
            "source": source,
            "model": None if detector is None else [detector.model_path, detector.imgsz, detector.conf, detector.iou],
            "rules": [{"kind": r.kind, **{k: v for k, v in vars(r).items()}} for r in self.rules],
            "budget": vars(self.budget),
            "pacing": None if self.pacing is None else self.pacing.to_dict(),
            "dedup": None if self.dedup is None else self.dedup.to_dict(),
            "scorer": vars(self.scorer),
            "frame_stride": self.stride,  # its name before 0.x: kept so older harvests still resume
            "seed": self.seed,
            "annotate": self.annotate,
        }
        if site is not None:
            config["site_budget"] = vars(site.limits)
        return fingerprint(config)
