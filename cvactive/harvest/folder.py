"""A harvest's folder: checked before any work, locked for the whole run, claimed, moved aside.

The output discipline of :mod:`cvactive.outputs` applied to ``--out``:

- :func:`check_out` (read only, before the model loads): ``--out`` is a folder cvactive may write,
  apart from the sources, and it is new, empty, or a harvest (its ownership record
  ``.cvactive-owner.json``). A folder holding anything else is refused, naming what it holds;
  nothing in it is touched.
- :func:`hold_folder` (for the whole run, feed restarts included): an exclusive
  :func:`~cvactive.outputs.folder_lock` (a second run into the folder fails at once, naming the
  running process), then the claim. With ``fresh`` a previous harvest is not deleted: the whole
  folder is renamed ``<out>.old-<time>`` (:func:`~cvactive.outputs.move_aside`, logged), where it
  stays a harvest that can be resumed by pointing ``--out`` at it.

What a harvest wrote is its record's ``state.json`` and ``manifest.jsonl`` (``site.json`` for the
folder of several sources) and the frame files :func:`cvactive.harvest.state.reconcile` derives from
them (``frames/<source slug>/<8-digit index>.jpg`` of this harvest's sources); nothing else there is
ever removed or cut. A harvest folder written before ownership records (a ``state.json`` of a
harvest beside only a manifest and ``frames/``) is taken over as a harvest.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from cvactive.errors import OutputError
from cvactive.harvest.state import FRAMES_DIR, MANIFEST_NAME, STATE_NAME, source_slug
from cvactive.outputs import (
    OwnedDir,
    check_dir_output,
    claim_dir,
    folder_lock,
    move_aside,
    read_owner,
    user_content,
)
from cvactive.sources import is_stream

log = logging.getLogger(__name__)

#: the command an ownership record of a harvest folder names (``cvactive harvest`` and ``feed`` alike)
HARVEST = "harvest"
#: the layout file of a folder of several sources (one harvest folder per source)
SITE_NAME = "site.json"


def _names(paths: Sequence[Path], limit: int = 5) -> str:
    shown = ", ".join(p.name + ("/" if p.is_dir() else "") for p in paths[:limit])
    return shown + (f", ... ({len(paths)} in all)" if len(paths) > limit else "")


def _json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _legacy(out: Path, site: bool) -> OwnedDir | None:
    """The record of a harvest folder written before ownership records, or ``None`` when ``out`` is not one."""
    content = {p.name for p in user_content(out)}
    if not content:
        return None
    if site:
        layout = _json(out / SITE_NAME)
        if not isinstance(layout, dict) or not isinstance(layout.get("sources"), dict):
            return None
        if not content <= {SITE_NAME, *map(str, layout["sources"].values())}:
            return None
        return OwnedDir(out, HARVEST, [SITE_NAME])
    state = _json(out / STATE_NAME)
    if not isinstance(state, dict) or not {"version", "fingerprint"} <= set(state):
        return None
    if not content <= {STATE_NAME, MANIFEST_NAME, FRAMES_DIR, STATE_NAME + ".tmp"}:  # .tmp: a save cut short
        return None
    return OwnedDir(out, HARVEST, [STATE_NAME, MANIFEST_NAME])


def _claimable(out: Path, site: bool) -> OwnedDir | None:
    """The harvest record of ``out`` (``None`` when it is new or empty); refuse anything else.

    Raises:
        OutputError: ``out`` holds files and no harvest, another command's output, or a harvest of
            the other kind (one source / several sources).
    """
    owner = read_owner(out) or _legacy(out, site)
    if owner is None:
        content = user_content(out)
        if content:
            raise OutputError(
                f"{out} is not empty and holds no harvest (it holds {_names(content)}); nothing there is touched: "
                "choose another --out, or an empty folder"
            )
        return None
    if owner.command != HARVEST:
        raise OutputError(f"{out} holds the output of cvactive {owner.command}, not a harvest; choose another --out")
    if site and STATE_NAME in owner.files:
        raise OutputError(f"{out} holds the harvest of one source; harvest several sources into another --out")
    if not site and SITE_NAME in owner.files:
        raise OutputError(
            f"{out} holds a harvest of several sources ({SITE_NAME}); give the same sources to resume it, "
            "or choose another --out"
        )
    return owner


def check_out(out: str | os.PathLike[str], sources: Sequence[str], *, site: bool = False) -> Path:
    """Check, before any work and without writing, that ``out`` can take this harvest; return it.

    Args:
        out: the harvest folder (``site``: the folder of several sources' harvest folders).
        sources: the sources it harvests (files and folders may not overlap ``out``).
        site: ``out`` is the folder of a harvest of several sources.

    Raises:
        OutputError: ``out`` is a file, not writable, overlaps a source, or holds something other
            than a harvest of this kind (the message lists what it holds).
    """
    path = check_dir_output(out, inputs=[s for s in sources if not is_stream(s)])
    _claimable(path, site)
    return path


def check_site(out: str | os.PathLike[str], sources: Sequence[str]) -> Path:
    """:func:`check_out` for a harvest of several sources: the folder and each source's folder in it."""
    root = check_out(out, sources, site=True)
    for source in sources:
        check_out(root / source_slug(source), [source])
    return root


@contextlib.contextmanager
def hold_folder(
    out: Path, command: str, *, fresh: bool = False, site: bool = False
) -> Iterator[tuple[OwnedDir, Path | None]]:
    """Lock ``out`` for the block and claim it as a harvest; yield its record and where an old harvest went.

    With ``fresh``, a folder holding anything but cvactive's bookkeeping is renamed aside first
    (its lock and record go with it) and ``out`` starts empty. The record lists the harvest's
    own files (``state.json`` and ``manifest.jsonl``, or ``site.json``) before any is written.

    Raises:
        OutputError: another process holds ``out``; ``out`` is not a harvest of this kind
            (:func:`check_out`); ``fresh`` would move the current working folder.
    """
    with contextlib.ExitStack() as stack:
        stack.enter_context(folder_lock(out, command))
        owner = _claimable(out, site)
        aside = None
        if fresh and user_content(out):
            if Path.cwd().resolve().is_relative_to(out.resolve()):
                raise OutputError(f"--fresh would move {out} aside while it is the current folder; run from elsewhere")
            aside = move_aside(os.path.abspath(out))  # a symlink is moved, not the folder it names
            log.info("moved the previous harvest in %s aside to %s (nothing deleted)", out, aside)
            stack.enter_context(folder_lock(out, command))
            owner = None
        if owner is None:
            owner = claim_dir(out, HARVEST)
        owner.record([out / name for name in ((SITE_NAME,) if site else (STATE_NAME, MANIFEST_NAME))])
        yield owner, aside
