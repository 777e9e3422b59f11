"""The entry points of harvesting: one source (:func:`harvest`), or several at once (:func:`harvest_feeds`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from cvactive.detect.model import Detector
from cvactive.errors import ConfigError
from cvactive.harvest.control import HarvestSummary
from cvactive.harvest.feed import list_sources
from cvactive.harvest.feeds import Restart, SiteSummary, run_concurrently
from cvactive.harvest.folder import HARVEST, SITE_NAME, check_site, hold_folder
from cvactive.harvest.infer import SharedDetector
from cvactive.harvest.options import HarvestOptions, refuse_site_budget, site_budget_of
from cvactive.harvest.runner import HarvestRun
from cvactive.harvest.state import source_slug, write_json_atomic


def harvest(
    source: str | Path,
    out: str | Path,
    options: HarvestOptions | Mapping[str, Any] | None = None,
    *,
    detector: Detector | None = None,
    fresh: bool = False,
    progress: bool = True,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
    on_log: Callable[[HarvestSummary], None] | None = None,
    **keys: Any,
) -> HarvestSummary:
    """Harvest the frames worth labeling from a video, a folder of videos, a stream or a camera.

    The options are one :class:`~cvactive.harvest.options.HarvestOptions` (the keys of
    ``configs/harvest.yaml``, each declared there with its type, range, default and meaning), a
    config mapping, or its fields as keyword arguments (``rules=[...], stride=4``), set over it.

    Args:
        source: video file, folder of videos, stream URL (rtsp/http/...) or camera index.
        out: harvest folder (``frames/``, ``manifest.jsonl``, ``state.json``): a new or empty folder,
            or one holding a harvest, which is resumed (same config) or refused (another config).
            A folder holding anything else is refused, naming what it holds, and left as it is;
            the folder is locked for the run (a second run into it fails at once).
        options: the harvest's options (see above).
        detector: the model (needed by model rules, a pacing score, embedding dedup or ``annotate``).
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
    checked = HarvestOptions.of(options, **keys)
    refuse_site_budget(checked)
    run = HarvestRun(Path(out), str(source), sources, detector, checked)
    return run.execute(fresh=fresh, progress=progress, stop=stop, handle_signals=handle_signals, on_log=on_log)


def harvest_feeds(
    sources: Sequence[str | Path],
    out: str | Path,
    options: HarvestOptions | Mapping[str, Any] | None = None,
    *,
    detector: Detector | None = None,
    restart: Restart | None = None,
    fresh: bool = False,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
    command: str = HARVEST,
    **keys: Any,
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
        restart: restart a source whose run ended unfinished (``cvactive feed``), or ``None`` to
            run each source once (``cvactive harvest``).
        fresh: move the previous harvests in the sources' folders aside (nothing deleted).
        stop: an event that stops every source (as SIGTERM does).
        handle_signals: turn SIGTERM/SIGINT into a clean stop of every source (main thread only).
        command: the command the folder locks name (``harvest`` or ``feed``).
        options, keys: the options of every source, as :func:`harvest` takes them; their
            ``site_budget`` caps ``per_minute``, ``per_hour``, ``per_day``, ``total`` over all
            sources (clock: wall time for live sources).

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
    checked = HarvestOptions.of(options, **keys)
    site = site_budget_of(checked)
    shared = cast(Detector, SharedDetector(detector)) if detector is not None else None
    root = check_site(out, names)
    runs = {n: HarvestRun.create(n, root / source_slug(n), checked, detector=shared, site=site) for n in names}
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
