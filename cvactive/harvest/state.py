"""The harvest's state on disk: position in each source, budget ledgers, pacing and dedup memory.

Layout of a harvest folder::

    DIR/frames/<stem>-<id>/<frame>.jpg   kept frames
    DIR/manifest.jsonl                   one JSON line per kept frame
    DIR/state.json                       this state (written atomically: tmp file + os.replace)

Order of writes for a kept frame: the JPEG, then its manifest line (flushed), then, at the end
of the batch the frame belongs to, the state, which records the manifest's size in bytes. On a
restart the manifest is cut back to that size and frame files it does not list are deleted;
the frames after the saved position are then read again. Because every decision depends only
on the saved state and on seeded draws, the re-read frames get the same decisions, so a run
killed at any instant (even with SIGKILL) and started again ends with the same kept frames as
an uninterrupted run, none of them twice, and no budget spent twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvactive.errors import ConfigError

STATE_VERSION = 1
STATE_NAME = "state.json"
MANIFEST_NAME = "manifest.jsonl"
FRAMES_DIR = "frames"


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
        state = HarvestState.from_dict(data)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"{path}: harvest state is unreadable ({err}); remove it or use --fresh") from err
    if state.fingerprint != fp:
        raise ConfigError(
            f"{out} holds a harvest made with a different config, model or source "
            f"(state fingerprint {state.fingerprint}, this run {fp}); use the same command to resume, "
            "another --out, or --fresh to start over"
        )
    return state


def reconcile(out: Path, state: HarvestState | None) -> int:
    """Make the manifest and frame files agree with ``state``; return how many frame files were removed.

    The manifest is cut back to ``state.manifest_bytes`` (lines written after the last saved
    state, and any half-written line, go: those frames are read and decided again), and any
    frame file the manifest does not list is deleted.
    """
    manifest = out / MANIFEST_NAME
    keep_bytes = state.manifest_bytes if state is not None else 0
    if manifest.exists():
        size = manifest.stat().st_size
        if size < keep_bytes:
            raise ConfigError(
                f"{manifest} is shorter ({size} bytes) than its saved state says ({keep_bytes}); "
                "it was edited or replaced: use --fresh or another --out"
            )
        if size > keep_bytes:
            with manifest.open("r+b") as fh:
                fh.truncate(keep_bytes)
    listed: set[str] = set()
    if manifest.exists():
        for line in manifest.read_text(encoding="utf-8").splitlines():
            if line.strip():
                listed.add(str(Path(json.loads(line)["path"]).resolve()))
    removed = 0
    frames = out / FRAMES_DIR
    if frames.is_dir():
        for path in frames.rglob("*.jpg"):
            if str(path.resolve()) not in listed:
                path.unlink()
                removed += 1
    return removed
