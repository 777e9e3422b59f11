"""Split a pool source into shards: the units of work that actors score and a resumed run skips.

A shard is either a run of consecutive images from the input list (a file the worker cannot read, or of
an unsupported type, is reported and skipped there, as the local path does) or a frame range
``[start, stop)`` of one video. Shards are planned in the order the local path reads the
source (:func:`cvactive.sources.expand`: files, folders sorted, glob patterns), so the
records of all shards, concatenated in shard order, are the records ``cvactive score`` writes.

Image lists are plain text files (``.txt`` / ``.lst``), one path per line (``#`` starts a
comment); relative paths are taken from the list file's folder.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from cvactive.errors import ConfigError, SourceError
from cvactive.sharded import Shard
from cvactive.sources import VIDEO_SUFFIXES, expand, is_stream, open_video

LIST_SUFFIXES = frozenset({".txt", ".lst"})


def read_list(path: Path) -> list[Path]:
    """The paths a list file names, one a line (relative ones resolved against its folder)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            p = Path(text)
            out.append(p if p.is_absolute() else path.parent / p)
    if not out:
        raise SourceError(f"image list {str(path)!r} names no files")
    return out


def input_files(sources: str | Path | Sequence[str | Path]) -> list[Path]:
    """Every file a source (or several) names, in the order the local path reads them."""
    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    if not items:
        raise SourceError("no source given: name images, folders, glob patterns, image lists or videos")
    files: list[Path] = []
    for item in items:
        text = str(item)
        if is_stream(text):
            raise ConfigError(
                f"source {text!r} is a live stream; the Ray engine scores finite pools (files, folders, "
                "globs, lists, videos): use `cvactive harvest` for streams"
            )
        path = Path(text)
        if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            files.extend(read_list(path))
        else:
            files.extend(expand(text))
    return files


def _frame_count(video: str) -> int:
    cap, info = open_video(video)
    cap.release()  # type: ignore[attr-defined]
    return info.frame_count


def _video_shards(video: str, first: int, shard_size: int, stride: int) -> Iterator[Shard]:
    count = _frame_count(video)
    span = shard_size * stride  # frames covered by one shard
    starts = list(range(0, max(count, 1), span))
    for j, start in enumerate(starts):
        last = j == len(starts) - 1
        # The last range is open-ended: a header that miscounts frames loses none.
        yield Shard(first + j, (), video, start, None if last else start + span, stride)


def plan_shards(sources: str | Path | Sequence[str | Path], *, shard_size: int = 256, stride: int = 1) -> list[Shard]:
    """The shards of a pool: runs of ``shard_size`` images, and ``shard_size``-frame ranges of each video.

    Raises:
        ConfigError: ``shard_size`` or ``stride`` below 1, or a live stream as source.
        SourceError: a source does not exist or names no image or video.
    """
    if shard_size < 1:
        raise ConfigError(f"shard_size must be at least 1, got {shard_size}")
    if stride < 1:
        raise ConfigError(f"stride must be at least 1, got {stride}")
    shards: list[Shard] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            shards.append(Shard(len(shards), tuple(run)))
            run.clear()

    for path in input_files(sources):
        suffix = path.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            flush()
            shards.extend(_video_shards(str(path), len(shards), shard_size, stride))
            continue
        run.append(str(path))
        if len(run) == shard_size:
            flush()
    flush()
    return shards
