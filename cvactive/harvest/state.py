"""The harvest's state on disk: position in each source, budget ledgers, pacing and dedup memory.

Layout of a harvest folder::

    DIR/frames/<stem>-<id>/<frame>.jpg   kept frames
    DIR/manifest.jsonl                   one JSON line per kept frame
    DIR/state.json                       this state (written atomically: tmp file + os.replace)
    DIR/.cvactive-owner.json             the folder is a harvest's (see cvactive.harvest.folder)
    DIR/.cvactive.lock                   held (flock) by the run writing the folder

Order of writes for a kept frame: the JPEG, then its manifest line (flushed), then, at the end
of the batch the frame belongs to, the state, which records the manifest's size in bytes. On a
restart the manifest is cut back to that size and the frame files written after the saved
position are deleted (only files this harvest writes: ``frames/<source slug>/<index>.jpg`` of its
own sources, never anything else under ``frames/``); the frames after the saved position are
then read again. Because every decision depends only
on the saved state and on seeded draws, the re-read frames get the same decisions, so a run
killed at any instant (even with SIGKILL) and started again ends with the same kept frames as
an uninterrupted run, none of them twice, and no budget spent twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvactive.errors import ConfigError

STATE_VERSION = 1
STATE_NAME = "state.json"
MANIFEST_NAME = "manifest.jsonl"
FRAMES_DIR = "frames"
#: the name of a frame file a harvest writes (its frame index)
FRAME_NAME = re.compile(r"\d{8}\.jpg")


def frame_path(out: Path, source: str, index: int) -> Path:
    """Where a kept frame's JPEG goes: ``frames/<stem>-<crc32 of source>/<index>.jpg``."""
    return out / FRAMES_DIR / source_slug(source) / f"{index:08d}.jpg"


def source_slug(source: str) -> str:
    """A folder name for a source: its file stem (or ``camera<N>``, ``stream``) and the crc32 of its text."""
    stem = "camera" + source if source.isdigit() else Path(source.split("?")[0].rstrip("/")).stem or "stream"
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)[:40]
    return f"{stem}-{zlib.crc32(source.encode()):08x}"


def fingerprint(config: dict[str, Any]) -> str:
    """A short hash of a JSON-able config: a restart must use the same one."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_json_atomic(path: Path, data: dict[str, Any], fsync: bool = False) -> None:
    """Write JSON to ``path`` so a reader sees the old file or the new one, never half of one.

    ``os.replace`` is atomic, which survives a killed process; ``fsync`` also survives power loss.
    """
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, separators=(",", ":"))
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass
class SourceState:
    """Where a source stands: the next frame index to read, whether it is finished, its clock origin."""

    next_frame: int = 0
    done: bool = False
    clock_base: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"next_frame": self.next_frame, "done": self.done, "clock_base": self.clock_base}


@dataclass
class HarvestState:
    """Everything a resumed harvest needs to carry on exactly where it stopped.

    Attributes:
        fingerprint: hash of the config and sources that made this state.
        sources: per source, its :class:`SourceState`.
        manifest_bytes: size of ``manifest.jsonl`` when this state was saved.
        kept: frames kept so far.
        ledger: the global :class:`~cvactive.harvest.budget.Ledger` (as a dict).
        rule_ledgers: rule name -> that rule's ledger dict.
        rule_last: rule name -> ``[source, frame, clock]`` of its last firing (cheap rules' timers).
        pacer: the :class:`~cvactive.harvest.budget.Pacer` dict, or ``None``.
        dedup: the :class:`~cvactive.harvest.dedup.Deduper` dict, or ``None``.
        counts: running totals (frames, inferred, candidates, rejections by reason, per rule,
            ``stale`` live frames dropped).
        site_ledger: this source's share of a site budget shared with other sources (a ledger
            dict), or ``None`` outside a several-source harvest with ``site_budget``.
    """

    fingerprint: str
    sources: dict[str, SourceState] = field(default_factory=dict)
    manifest_bytes: int = 0
    kept: int = 0
    ledger: dict[str, Any] = field(default_factory=dict)
    rule_ledgers: dict[str, dict[str, Any]] = field(default_factory=dict)
    rule_last: dict[str, list[Any]] = field(default_factory=dict)
    pacer: dict[str, Any] | None = None
    dedup: dict[str, Any] | None = None
    counts: dict[str, int] = field(default_factory=dict)
    site_ledger: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "version": STATE_VERSION,
            "fingerprint": self.fingerprint,
            "sources": {k: v.to_dict() for k, v in self.sources.items()},
            "manifest_bytes": self.manifest_bytes,
            "kept": self.kept,
            "ledger": self.ledger,
            "rule_ledgers": self.rule_ledgers,
            "rule_last": self.rule_last,
            "pacer": self.pacer,
            "dedup": self.dedup,
            "counts": self.counts,
        }
        if self.site_ledger is not None:
            data["site_ledger"] = self.site_ledger
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HarvestState:
        if data.get("version") != STATE_VERSION:
            raise ConfigError(f"harvest state version {data.get('version')!r} is not {STATE_VERSION}")
        return cls(
            fingerprint=str(data["fingerprint"]),
            sources={k: SourceState(**v) for k, v in data.get("sources", {}).items()},
            manifest_bytes=int(data.get("manifest_bytes", 0)),
            kept=int(data.get("kept", 0)),
            ledger=dict(data.get("ledger") or {}),
            rule_ledgers=dict(data.get("rule_ledgers") or {}),
            rule_last={k: list(v) for k, v in (data.get("rule_last") or {}).items()},
            pacer=data.get("pacer"),
            dedup=data.get("dedup"),
            counts={k: int(v) for k, v in (data.get("counts") or {}).items()},
            site_ledger=data.get("site_ledger"),
        )

    def save(self, out: Path, fsync: bool = False) -> None:
        write_json_atomic(out / STATE_NAME, self.to_dict(), fsync)


def load_state(out: Path, fp: str) -> HarvestState | None:
    """The saved state of the harvest in ``out``, or ``None`` when it has none.

    Raises:
        ConfigError: the state is unreadable, or was made by a different config or source.
    """
    path = out / STATE_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError(f"a JSON {type(data).__name__}, not an object")
        state = HarvestState.from_dict(data)
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise ConfigError(
            f"{path}: harvest state is unreadable ({err}); nothing was changed: --fresh moves this harvest aside "
            "(frames and manifest kept) and starts a new one, or choose another --out"
        ) from err
    if state.fingerprint != fp:
        raise ConfigError(
            f"{out} holds a harvest made with a different config, model or source "
            f"(state fingerprint {state.fingerprint}, this run {fp}); use the same command to resume, "
            "another --out, or --fresh to move this harvest aside and start over"
        )
    return state


def _manifest_paths(data: bytes) -> list[Path] | None:
    """The ``path`` of each complete line of manifest bytes, or ``None`` when a line is not a harvest's."""
    paths = []
    for raw in data.split(b"\n")[:-1]:  # the last piece is empty or a half-written line
        if not raw.strip():
            continue
        try:
            paths.append(Path(json.loads(raw)["path"]))
        except (ValueError, KeyError, TypeError):
            return None
    return paths


def _cut(out: Path, state: HarvestState | None, sources: Iterable[str]) -> tuple[int, set[Path], dict[str, str]]:
    """Where the manifest is cut (its saved size), the frame files its cut lines list, and the slugs
    of this harvest's sources; nothing is changed.

    Raises:
        ConfigError: the manifest is shorter than the state says, or its lines after the saved size
            are not lines of this harvest.
    """
    manifest = out / MANIFEST_NAME
    keep_bytes = state.manifest_bytes if state is not None else 0
    slugs = {source_slug(s): s for s in [*sources, *(state.sources if state is not None else ())]}
    cut: list[Path] | None = []
    if manifest.exists():
        size = manifest.stat().st_size
        if size < keep_bytes:
            raise ConfigError(
                f"{manifest} is shorter ({size} bytes) than its saved state says ({keep_bytes}); "
                "it was edited or replaced: use --fresh (moves this harvest aside) or another --out"
            )
        with manifest.open("rb") as fh:
            fh.seek(keep_bytes)
            cut = _manifest_paths(fh.read())
        if cut is None or not all(_ours(out, p, slugs) for p in cut):
            raise ConfigError(
                f"{manifest} holds lines after its saved size ({keep_bytes} bytes) that this harvest did not "
                "write; nothing was changed: choose another --out"
            )
    return keep_bytes, {p.resolve() for p in cut or ()}, slugs


def _ours(out: Path, path: Path, slugs: dict[str, str]) -> bool:
    """``path`` is a frame file a harvest of these sources writes: ``frames/<slug>/<index>.jpg``."""
    path = path.resolve()
    return (
        path.parent.parent == (out / FRAMES_DIR).resolve()
        and path.parent.name in slugs
        and bool(FRAME_NAME.fullmatch(path.name))
    )


def check_resumable(out: Path, state: HarvestState | None, sources: Iterable[str] = ()) -> None:
    """What :func:`reconcile` would refuse, checked without changing anything.

    Raises:
        ConfigError: as :func:`reconcile`.
    """
    _cut(out, state, sources)


def reconcile(out: Path, state: HarvestState | None, sources: Iterable[str] = ()) -> int:
    """Make the manifest and frame files agree with ``state``; return how many frame files were removed.

    The manifest is cut back to ``state.manifest_bytes`` (lines written after the last saved
    state, and any half-written line, go: those frames are read and decided again), and the
    frame files this harvest wrote after the saved position go: those the cut lines list, and
    ``frames/<slug>/<index>.jpg`` of its sources (``sources`` and those of ``state``) at or past the
    source's saved ``next_frame`` that the kept manifest does not list (a kill between a JPEG and
    its manifest line). No other file is removed, and a manifest whose cut lines are not a
    harvest's is not cut.

    Raises:
        ConfigError: the manifest is shorter than the state says, or its lines after the saved size
            are not lines of this harvest (nothing is changed).
    """
    manifest = out / MANIFEST_NAME
    keep_bytes, doomed, slugs = _cut(out, state, sources)
    if manifest.exists() and manifest.stat().st_size > keep_bytes:
        with manifest.open("r+b") as fh:
            fh.truncate(keep_bytes)
    listed: set[Path] = set()
    if manifest.exists():
        for line in manifest.read_bytes().splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                listed.add(Path(json.loads(line)["path"]).resolve())
    frames = (out / FRAMES_DIR).resolve()
    for slug, source in slugs.items():
        folder = frames / slug
        if not folder.is_dir():
            continue
        saved = state.sources.get(source) if state is not None else None
        start = saved.next_frame if saved is not None else 0
        for path in folder.iterdir():
            if FRAME_NAME.fullmatch(path.name) and int(path.name[:8]) >= start:
                doomed.add(path.resolve())
    removed = 0
    for path in sorted(doomed - listed):
        if path.is_file() and _ours(out, path, slugs):
            path.unlink()
            removed += 1
    return removed
