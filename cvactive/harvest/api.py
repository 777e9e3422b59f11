"""The entry points of harvesting: one source (:func:`harvest`), or several at once (:func:`harvest_feeds`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from cvactive._renamed import renamed_kwargs

from cvactive.detect.model import Detector
from cvactive.detect.scorer import Scorer
from cvactive.errors import ConfigError
from cvactive.harvest.budget import Limits, Pacing, SiteBudget
from cvactive.harvest.control import HarvestSummary
from cvactive.harvest.dedup import Dedup
from cvactive.harvest.feed import Retry
from cvactive.harvest.feeds import Restart, SiteSummary, run_concurrently
from cvactive.harvest.folder import HARVEST, SITE_NAME, check_site, hold_folder
from cvactive.harvest.infer import SharedDetector
from cvactive.harvest.options import HarvestOptions
from cvactive.harvest.rules import Rule
from cvactive.harvest.runner import HarvestRun, list_sources
from cvactive.harvest.state import source_slug, write_json_atomic


@renamed_kwargs(frame_stride="stride")
def harvest(
    source: str | Path,
    out: str | Path,
    *,
    detector: Detector | None = None,
    rules: Sequence[Mapping[str, Any] | Rule] = (),
    budget: Mapping[str, Any] | Limits | None = None,
    pacing: Mapping[str, Any] | Pacing | None = None,
    dedup: Mapping[str, Any] | Dedup | None = None,
    scorer: Mapping[str, Any] | Scorer | None = None,
    stride: int = 1,
    jpeg_quality: int = 90,
    seed: int = 0,
    batch: int = 1,
    annotate: bool = True,
    retry: Mapping[str, Any] | Retry | None = None,
    checkpoint_seconds: float = 5.0,
    log_every: float = 60.0,
    fsync: bool = False,
    keep_up: bool = True,
    workers: int | None = None,
    fresh: bool = False,
    progress: bool = True,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
    on_log: Callable[[HarvestSummary], None] | None = None,
) -> HarvestSummary:
    """Harvest the frames worth labeling from a video, a folder of videos, a stream or a camera.

    YAML config keys (``configs/harvest.yaml``) are the keyword arguments from ``rules`` to
    ``workers``.

    Args:
        source: video file, folder of videos, stream URL (rtsp/http/...) or camera index.
        out: harvest folder (``frames/``, ``manifest.jsonl``, ``state.json``): a new or empty folder,
            or one holding a harvest, which is resumed (same config) or refused (another config).
            A folder holding anything else is refused, naming what it holds, and left as it is;
            the folder is locked for the run (a second run into it fails at once).
        detector: the model (needed by model rules, a pacing score, embedding dedup or ``annotate``).
        rules: ordered rule specs (``kind``, ``name``, parameters, ``limits``), see
            :mod:`cvactive.harvest.rules`.
        budget: caps ``per_minute``, ``per_hour``, ``per_day``, ``total`` on kept frames.
        pacing: spread a budget over the stream (see :mod:`cvactive.harvest.budget`), or ``None``.
        dedup: near-duplicate suppression (see :mod:`cvactive.harvest.dedup`), or ``None``.
        scorer: :class:`~cvactive.detect.scorer.Scorer` keyword arguments (measures, aggregations, ...).
        stride: look only at frames whose index is a multiple of this.
        jpeg_quality: JPEG quality of saved frames (1-100).
        seed: seeds every random decision (with the source and frame index).
        batch: frames per detector call.
        annotate: run the model on frames only cheap rules chose, so their manifest lines have boxes.
        retry: reconnection policy for live sources (``attempts``, ``backoff``, ``max_backoff``).
        checkpoint_seconds: save the state at least this often (wall time) besides after kept frames.
        log_every: log running counts every this many seconds (wall time).
        fsync: fsync every manifest line (survives power loss, slower).
        keep_up: read live sources in a thread that keeps only the newest frame, so a model
            slower than the camera stays at the live edge (frames it had no time for are counted
            as ``stale``); ``False`` reads every frame in order (a recording served over HTTP).
            Files are always read in full, in order.
        workers: threads of the inference pipeline that letterbox, run NMS and score while the
            model runs and the video decodes, when a model rule needs every frame (``None``: half
            the CPU cores, 2 to 8, as ``cvactive score``; ``0``: no pipeline, frame batch after
            batch on one thread). The kept frames, manifest and state are the same either way.
        fresh: move a previous harvest in ``out`` aside (renamed ``<out>.old-<time>``, nothing
            deleted) and start over.
        progress: show a progress bar.
        stop: an event that stops the harvest (as SIGTERM does).
        handle_signals: turn SIGTERM/SIGINT into a clean stop (main thread only).
        on_log: called with the running summary every ``log_every`` seconds.

    Raises:
        SourceError: the source does not exist or holds no video.
        ConfigError: an invalid option, or ``out`` holds a harvest made by another config.
        OutputError: ``out`` holds something other than a harvest, or another run holds it.
    """
    sources = list_sources(source)
    options = HarvestOptions.build(
        rules=rules,
        budget=budget,
        pacing=pacing,
        dedup=dedup,
        retry=retry,
        scorer=scorer,
        stride=stride,
        jpeg_quality=jpeg_quality,
        seed=seed,
        batch=batch,
        annotate=annotate,
        checkpoint_seconds=checkpoint_seconds,
        log_every=log_every,
        fsync=fsync,
        keep_up=keep_up,
        workers=workers,
    )
    run = HarvestRun(Path(out), str(source), sources, detector, options)
    return run.execute(fresh=fresh, progress=progress, stop=stop, handle_signals=handle_signals, on_log=on_log)


def harvest_feeds(
    sources: Sequence[str | Path],
    out: str | Path,
    *,
    detector: Detector | None = None,
    site_budget: Mapping[str, Any] | Limits | None = None,
    restart: Restart | None = None,
    fresh: bool = False,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
    command: str = HARVEST,
    **options: Any,
) -> SiteSummary:
    """Harvest several sources at once (a site's cameras): one thread, folder and state per source.

    Each source is harvested as :func:`harvest` would harvest it alone, into
    ``out/<name>-<crc32>/`` (``out/site.json`` lists which folder is whose; ``out`` and each
    source's folder are checked, claimed and locked as :func:`harvest` does its ``out``), with its own
    position, rules' timers, pacing, dedup memory and budget ledger. They share the detector
    (each source's pipeline submits to its one engine; with the OpenVINO engine the frames of
    all cameras are in flight together, see :mod:`cvactive.harvest.infer`) and, when
    ``site_budget`` is given, caps on the frames kept by
    all of them together, which survive a restart like each source's own ledger. A live source
    that drops reconnects (or gives up) in its own thread and one that hangs holds only its own
    reader, so neither stalls the others.

    Args:
        sources: video files, folders of videos, stream URLs or camera indices (no repeats).
        out: the site folder.
        detector: the model, shared by all sources.
        site_budget: caps ``per_minute``, ``per_hour``, ``per_day``, ``total`` over all sources
            (clock: wall time for live sources), or ``None``.
        restart: restart a source whose run ended unfinished (``cvactive feed``), or ``None`` to
            run each source once (``cvactive harvest``).
        fresh: move the previous harvests in the sources' folders aside (nothing deleted).
        stop: an event that stops every source (as SIGTERM does).
        handle_signals: turn SIGTERM/SIGINT into a clean stop of every source (main thread only).
        command: the command the folder locks name (``harvest`` or ``feed``).
        **options: the keyword arguments of :func:`harvest` from ``rules`` to ``workers`` (the
            YAML config keys), applied to every source.

    Raises:
        SourceError: a source does not exist or holds no video.
        ConfigError: an invalid option, a repeated source, or a source folder holding a harvest
            made by another config.
        OutputError: a folder holds something other than a harvest, or another run holds it.
    """
    names = [str(s) for s in sources]
    if not names:
        raise ConfigError("harvest_feeds needs at least one source")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"sources must differ; repeated: {repeated}")
    site = SiteBudget(Limits.from_mapping(site_budget, where="site_budget")) if site_budget is not None else None
    shared = cast(Detector, SharedDetector(detector)) if detector is not None else None
    root = check_site(out, names)
    runs = {n: HarvestRun.create(n, root / source_slug(n), detector=shared, site=site, **options) for n in names}
    layout = {"sources": {n: run.out.name for n, run in runs.items()}, "site_budget": site and vars(site.limits)}
    with hold_folder(root, command, site=True):
        write_json_atomic(root / SITE_NAME, layout)
        return run_concurrently(
            root,
            runs,
            site=site,
            restart=restart,
            fresh=fresh,
            stop=stop,
            handle_signals=handle_signals,
            command=command,
        )
