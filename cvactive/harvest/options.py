"""A harvest's options, declared once: :class:`HarvestOptions`, the keys of ``configs/harvest*.yaml``.

Each field is a config key with its type, range, default and help (see :mod:`cvactive.declare`);
the config schema (:func:`cvactive.declare.schema_of`), the command line's ``--seed`` and
``--workers``, the table in docs/config-reference.md and the resume fingerprint
(:meth:`HarvestOptions.fingerprint`) are derived from it. :func:`cvactive.harvest.harvest` takes
one, or its fields as keyword arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field

from cvactive.declare.fields import Declared, config_fields, from_mapping, option, plain_value
from cvactive.declare.ranges import NonNegFloat, NonNegInt, PosInt, Quality, Seed
from cvactive.detect.scorer import Scorer
from cvactive.errors import ConfigError
from cvactive.harvest.budget import Limits, Pacing, SiteBudget
from cvactive.harvest.dedup import Dedup
from cvactive.harvest.frames import Retry
from cvactive.harvest.harvester import Harvester
from cvactive.harvest.rules import Rule, check_unique_names
from cvactive.harvest.state import fingerprint

if TYPE_CHECKING:
    from cvactive.detect.model import Detector


@dataclass(frozen=True)
class HarvestOptions(Declared):
    """The options of a harvest (every config key); mappings given for a section are built into it."""

    rules: Annotated[list[Rule], Field(min_length=1)] = option(
        help="the rules, in order: a frame is a candidate when one with limit left fires (see the rule tables)"
    )
    budget: Limits | None = option(None, "caps on the frames kept by all rules together")
    pacing: Pacing | None = option(None, "spread the budget over the stream (null: keep while the caps allow)")
    dedup: Dedup | None = option(None, "near-duplicate suppression (null: off)")
    scorer: Scorer | None = option(None, "the measures and aggregations computed for every inferred frame")
    stride: PosInt = option(1, "look only at frames whose index is a multiple of this")
    jpeg_quality: Quality = option(90, "JPEG quality of the saved frames", fingerprint=False)
    seed: Seed = option(0, "seeds every random decision (with the source and the frame index)", flag="--seed")
    batch: PosInt = option(1, "frames per detector call", fingerprint=False)
    annotate: bool = option(True, "run the model on frames only cheap rules chose, so their lines have boxes")
    retry: Retry | None = option(None, "reconnecting a live source", fingerprint=False)
    checkpoint_seconds: NonNegFloat = option(5.0, "save the state at least this often (wall time)", fingerprint=False)
    log_every: NonNegFloat = option(
        60.0, "log the running counts every this many seconds (0: after every batch of frames)", fingerprint=False
    )
    fsync: bool = option(False, "fsync every manifest line (survives power loss, slower)", fingerprint=False)
    keep_up: bool = option(
        True,
        "read a live source in a thread that keeps only its newest frame (false: every frame, in order)",
        fingerprint=False,
    )
    workers: NonNegInt | None = option(
        None,
        "pipeline threads that letterbox, run NMS and score while the model runs (null: half the CPU cores, "
        "2 to 8; 0: no pipeline)",
        flag="--workers",
        fingerprint=False,
    )
    site_budget: Limits | None = option(
        None, "caps on the frames kept by several sources together (a site; not with one source)", fingerprint=False
    )

    where: ClassVar[str] = "harvest"

    def check(self) -> None:
        check_unique_names(self.rules)

    @classmethod
    def of(cls, options: HarvestOptions | Mapping[str, Any] | None = None, **keys: Any) -> HarvestOptions:
        """Options from an object or a config mapping, with ``keys`` (config keys) set over them.

        Raises:
            ConfigError: the first invalid option, naming the valid values.
        """
        if isinstance(options, HarvestOptions):
            return dataclasses.replace(options, **keys) if keys else options
        built = from_mapping(cls, {**(options or {}), **keys}, cls.where)
        assert built is not None
        return built

    @property
    def limits(self) -> Limits:
        """The harvest's caps (``budget``; none when unset)."""
        return self.budget or Limits()

    def harvester(self, out: Path, detector: Detector | None, site: SiteBudget | None = None) -> Harvester:
        """A fresh :class:`Harvester` for these options (checks that a needed model is given)."""
        return Harvester(
            out,
            detector,
            self.rules,
            self.limits,
            self.pacing,
            self.dedup,
            self.scorer or Scorer(),
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

    @property
    def needs_model(self) -> bool:
        """Whether a frame is ever run through the model (a model rule, annotation or a pacing score)."""
        paced = self.pacing is not None and self.pacing.score != "random"
        return self.annotate or paced or any(r.needs_model for r in self.rules)

    def fingerprint(self, source: str, detector: Detector | None, site: SiteBudget | None = None) -> str:
        """The hash of everything that decides which frames are kept (a resume must match it).

        Every option declared with ``fingerprint=True`` (the default) counts; those that change
        when or how fast frames are read, written or inferred (``workers``, ``batch``, ``retry``
        ...) do not, so a harvest resumes under other values of them.
        """
        config: dict[str, Any] = {
            "source": source,
            "model": None if detector is None else [detector.model_path, detector.imgsz, detector.conf, detector.iou],
        }
        for f in config_fields(HarvestOptions):
            if f.metadata["fingerprint"]:
                config[f.name] = plain_value(getattr(self, f.name))
        config["budget"] = plain_value(self.limits)
        config["scorer"] = plain_value(self.scorer or Scorer())
        if site is not None:
            config["site_budget"] = plain_value(site.limits)
        return fingerprint(config)


def site_budget_of(options: HarvestOptions) -> SiteBudget | None:
    """The shared caps of a site harvest, or ``None``."""
    return None if options.site_budget is None else SiteBudget(options.site_budget)


def refuse_site_budget(options: HarvestOptions) -> None:
    """A single harvest has no site: ``site_budget`` belongs to :func:`cvactive.harvest.harvest_feeds`."""
    if options.site_budget is not None:
        raise ConfigError("harvest: site_budget caps several sources together; with one source use budget")
