"""Pool scoring on Ray Data: a pool of actors, one detector each, over ``map_batches`` of shards.

:func:`score_sharded` plans the shards (:mod:`cvactive.scale.plan`), skips those a previous run
finished (their done markers), and scores the rest, either on Ray (``engine="ray"``) or in this
process (``engine="inline"``, the same :class:`~cvactive.scale.work.ShardScorer` in a loop). Each
Ray actor builds its detector once and scores whole shards; Ray restarts an actor that dies and
retries its shard, and since a shard's files are replaced, never appended to, a retry loses and
doubles nothing.

Ray is started by the call itself by default (``ray.init(num_cpus=..., include_dashboard=False)``)
and shut down at the end; with ``address=`` or ``RAY_ADDRESS`` set, it joins that cluster instead
(the output folder and the inputs must then be on storage every node sees, as for Ray Data's
own writers, and cvactive must be installed on the nodes).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cvactive.detect.scorer import Scorer
from cvactive.errors import ConfigError, CvactiveError, MissingDependencyError
from cvactive.scale.plan import plan_shards
from cvactive.scale.shards import (
    EMBEDDING_DTYPES,
    FORMAT,
    FORMATS,
    VERSION,
    ShardResult,
    atomic_write_json,
    check_settings,
    load_manifest,
    manifest_path,
    manifest_shards,
    read_done,
    remove_stale_temporaries,
    shard_path,
)
from cvactive.scale.work import DetectorFactory, ShardScorer
from cvactive.sharded import Shard

log = logging.getLogger(__name__)
ENGINES = ("ray", "inline")


@dataclass(frozen=True)
class DetectorSpec:
    """What each worker builds: a :class:`~cvactive.detect.model.Detector` with these arguments."""

    model: str
    imgsz: int = 640
    conf: float = 0.25
    iou: float = 0.7
    device: str | None = None
    embed: bool = False

    def __call__(self) -> Any:
        from cvactive.detect.model import Detector

        return Detector(
            self.model, imgsz=self.imgsz, conf=self.conf, iou=self.iou, device=self.device, embed=self.embed
        )


@dataclass(frozen=True)
class RayOptions:
    """How the actor pool is laid out.

    Attributes:
        actors: actors in the pool (one detector each).
        cpus_per_actor: CPUs Ray reserves for each actor.
        gpus_per_actor: GPUs each actor reserves (0 on CPU machines; 1, or 0.5 to share one).
        num_cpus: CPUs of a local Ray this call starts (default: every CPU of the machine).
        address: a running cluster (default: ``$RAY_ADDRESS``, else a local Ray).
        object_store_mb: object store of a local Ray (shard results are small).
    """

    actors: int = 2
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    num_cpus: int | None = None
    address: str | None = None
    object_store_mb: int = 256


@dataclass
class ShardedSummary:
    """What a sharded scoring run did (this run, and the folder as a whole)."""

    out: Path
    shards: int = 0
    scored_now: int = 0
    skipped: int = 0
    records: int = 0
    boxes: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    engine: str = "ray"
    #: process id -> seconds that worker took to build its detector (this run's workers)
    worker_startup: dict[int, float] = field(default_factory=dict)

    def scored(self, result: ShardResult) -> None:
        """Count one shard this run scored (and the start-up time of the worker that scored it)."""
        self.scored_now += 1
        if result.worker:
            self.worker_startup[int(result.worker["pid"])] = float(result.worker["startup_seconds"])


def _check(formats: Sequence[str], embedding_dtype: str, engine: str, ray: RayOptions, batch: int) -> None:
    from cvactive.measures import check_names

    if not formats:
        raise ConfigError(f"give at least one shard format; valid formats: {', '.join(FORMATS)}")
    check_names(list(formats), FORMATS, "shard format")
    check_names([embedding_dtype], EMBEDDING_DTYPES, "embedding dtype")
    check_names([engine], ENGINES, "engine")
    if batch < 1:
        raise ConfigError(f"batch must be at least 1, got {batch}")
    if ray.actors < 1 or ray.cpus_per_actor < 0 or ray.gpus_per_actor < 0:
        raise ConfigError(
            f"actors must be >= 1 and cpus/gpus per actor >= 0, got actors={ray.actors}, "
            f"cpus_per_actor={ray.cpus_per_actor}, gpus_per_actor={ray.gpus_per_actor}"
        )


def _prepare(
    out: Path, sources: Any, settings: dict[str, Any], shard_size: int, stride: int, overwrite: bool
) -> list[Shard]:
    """The shard plan: the folder's own when resuming (settings checked), else a new one."""
    path = manifest_path(out)
    if path.is_file() and not overwrite:
        data = load_manifest(out)
        check_settings(data["settings"], settings, out)
        return manifest_shards(data)
    if overwrite and path.is_file():  # the done markers of the shards this folder's manifest planned, no others
        for shard in manifest_shards(load_manifest(out)):
            shard_path(out, shard, ".done.json").unlink(missing_ok=True)
    shards = plan_shards(sources, shard_size=shard_size, stride=stride)
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out, settings, shards, {})
    return shards


def write_manifest(out: Path, settings: dict[str, Any], shards: list[Shard], done: dict[int, ShardResult]) -> None:
    """The manifest: settings, the plan with each shard's status, totals (atomically replaced)."""
    entries = []
    for shard in shards:
        entry = shard.to_dict()
        result = done.get(shard.index)
        entry["done"] = result is not None
        if result is not None:
            entry.update(records=result.records, boxes=result.boxes, failures=[list(f) for f in result.failures])
        entries.append(entry)
    dims = {r.embedding_dim for r in done.values() if r.embedding_dim is not None}
    data = {
        "format": FORMAT,
        "version": VERSION,
        "settings": settings,
        "complete": len(done) == len(shards),
        "shards_done": len(done),
        "records": sum(r.records for r in done.values()),
        "boxes": sum(r.boxes for r in done.values()),
        "embedding_dim": dims.pop() if len(dims) == 1 else None,
        "shards": entries,
    }
    atomic_write_json(manifest_path(out), data)


def score_sharded(
    sources: str | Path | Sequence[str | Path],
    out: str | Path,
    detector: DetectorSpec | DetectorFactory,
    *,
    scorer: Scorer | None = None,
    settings: dict[str, Any] | None = None,
    engine: str = "ray",
    ray: RayOptions | None = None,
    batch: int = 8,
    stride: int = 1,
    shard_size: int = 256,
    formats: Sequence[str] = FORMATS,
    class_scores: bool = False,
    embedding_dtype: str = "float32",
    overwrite: bool = False,
    progress: bool = True,
) -> ShardedSummary:
    """Score a pool into sharded files with a manifest; resumable by shard.

    Args:
        sources: images, folders, glob patterns, image-list files (``.txt``) or videos.
        out: the output folder (``manifest.json`` and ``shards/``).
        detector: a :class:`DetectorSpec`, or any picklable callable that builds the detector.
        scorer: measures and aggregations (all of them by default).
        settings: what to record about a custom detector factory (checked on resume).
        engine: ``ray`` (actor pool) or ``inline`` (this process, same code).
        ray: actor count, CPUs/GPUs per actor, cluster address.
        batch: images per forward pass.
        stride: keep every n-th video frame.
        shard_size: images (or kept frames) per shard.
        formats: shard files: ``jsonl`` (the records of ``cvactive score``), ``parquet`` (image table).
        class_scores: keep each box's full class-score row in the JSON lines.
        embedding_dtype: ``float32`` or ``float16`` embedding shards.
        overwrite: start over in a folder that holds an earlier run.
        progress: show a progress bar.
    """
    started = time.perf_counter()
    ray = ray or RayOptions()
    scorer = scorer or Scorer()
    _check(formats, embedding_dtype, engine, ray, batch)
    out = Path(out)
    options = {
        "batch": batch,
        "formats": tuple(formats),
        "class_scores": class_scores,
        "embedding_dtype": embedding_dtype,
    }
    full = _run_settings(detector, settings, scorer, stride=stride, shard_size=shard_size, options=options)
    shards = _prepare(out, sources, full, shard_size, stride, overwrite)
    remove_stale_temporaries(out)
    done = {s.index: r for s in shards if (r := read_done(out, s.index)) is not None}
    todo = [s for s in shards if s.index not in done]
    summary = ShardedSummary(out, shards=len(shards), skipped=len(done), engine=engine)

    def record(result: ShardResult) -> None:
        done[result.index] = result
        summary.scored(result)
        if summary.scored_now % 20 == 0:
            write_manifest(out, full, shards, done)

    if todo:
        run = _run_ray if engine == "ray" else _run_inline
        with _progress_bar(todo, engine, progress) as bar:

            def tick(result: ShardResult) -> None:
                record(result)
                bar.update(result.records)

            run(todo, out, detector, scorer, options, ray, tick)
    write_manifest(out, full, shards, done)
    for shard in shards:
        result = done[shard.index]
        summary.records += result.records
        summary.boxes += result.boxes
        summary.failures.extend(result.failures)
    summary.seconds = time.perf_counter() - started
    return summary


def _run_settings(
    detector: DetectorSpec | DetectorFactory,
    settings: dict[str, Any] | None,
    scorer: Scorer,
    *,
    stride: int,
    shard_size: int,
    options: dict[str, Any],
) -> dict[str, Any]:
    """The settings a manifest records (and a resumed run must match), as the manifest reads them back."""
    full = {
        "detector": asdict(detector) if isinstance(detector, DetectorSpec) else (settings or {}),
        "scorer": {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in asdict(scorer).items()},
        "stride": stride,
        "shard_size": shard_size,
        "formats": sorted(options["formats"]),
        "class_scores": options["class_scores"],
        "embedding_dtype": options["embedding_dtype"],
    }
    loaded: dict[str, Any] = json.loads(json.dumps(full))
    return loaded


def _progress_bar(todo: Sequence[Shard], engine: str, progress: bool) -> Any:
    """A tqdm bar over the images (or frames) of the shards still to score."""
    from tqdm import tqdm

    total = sum(s.expected or 0 for s in todo) or None
    return tqdm(total=total, disable=not progress, unit="img", desc=f"scoring ({engine})")


def _run_inline(
    todo: list[Shard],
    out: Path,
    factory: DetectorFactory,
    scorer: Scorer,
    options: dict[str, Any],
    ray: RayOptions,
    record: Callable[[ShardResult], None],
) -> None:
    worker = ShardScorer(out, factory, scorer, **options)
    for shard in todo:
        record(worker.score(shard))


class _RayShardActor:
    """The ``map_batches`` callable: one :class:`ShardScorer` per actor, one shard per batch row."""

    def __init__(self, out: str, factory: DetectorFactory, scorer: Scorer, options: dict[str, Any]) -> None:
        self.worker = ShardScorer(out, factory, scorer, **options)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        results = [self.worker.score(Shard.from_dict(json.loads(s))).to_dict() for s in batch["shard"]]
        return {"result": np.array([json.dumps(r) for r in results], dtype=object)}


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise MissingDependencyError("the Ray engine needs Ray Data: pip install 'cvactive[ray]'") from err
    return ray


def start_ray(options: RayOptions) -> bool:
    """Connect to a cluster (``address`` or ``$RAY_ADDRESS``) or start a local Ray; True if started here."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    address = options.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    else:
        ray.init(
            num_cpus=options.num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            object_store_memory=options.object_store_mb * 1024 * 1024,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    return True


def _user_error(err: BaseException) -> CvactiveError | None:
    """The cvactive error a Ray failure carries (an actor that could not load its model, say)."""
    seen: set[int] = set()
    stack: list[Any] = [err]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, CvactiveError):
            return e
        stack.extend([getattr(e, "cause", None), e.__cause__, e.__context__])
    return None


def _run_ray(
    todo: list[Shard],
    out: Path,
    factory: DetectorFactory,
    scorer: Scorer,
    options: dict[str, Any],
    opts: RayOptions,
    record: Callable[[ShardResult], None],
) -> None:
    ray = _import_ray()
    started_here = start_ray(opts)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.max_consecutive_actor_init_deaths = 2  # a model that cannot load fails the run, not loops
        items = [{"shard": json.dumps(s.to_dict())} for s in todo]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.map_batches(
            _RayShardActor,
            fn_constructor_kwargs={"out": str(out), "factory": factory, "scorer": scorer, "options": options},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(opts.actors, len(todo))),
            num_cpus=opts.cpus_per_actor,
            num_gpus=opts.gpus_per_actor or None,
        )
        try:
            for row in ds.iter_rows():
                record(ShardResult.from_dict(json.loads(row["result"])))
        except Exception as err:
            user = _user_error(err)
            if user is not None:
                raise type(user)(str(user)) from err
            raise
    finally:
        if started_here:
            ray.shutdown()
