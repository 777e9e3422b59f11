"""Image and video sources: files, folders, glob patterns and videos, with provenance.

A source is what Ultralytics' ``predict`` takes: a path (image, video, folder, glob pattern), a
stream URL or camera index, a BGR ``uint8`` array (or a ``(B, H, W, 3)`` stack, a greyscale
``(H, W)`` one, a PIL image), or a list of any of these (:data:`Source`).
It yields ``(image, FrameMeta)`` pairs: a BGR ``uint8`` array and where it came from
(path, plus frame index and timestamp in seconds for video frames). Unreadable images and
broken videos are reported in a :class:`SourceReport` (path, reason) and skipped, unless
``strict`` asks for the first failure to stop the run. A source that does not exist at all
is a :class:`~cvactive.errors.SourceError` straight away.

Every path reaches OpenCV only through this module, and only once its name is valid UTF-8
(:func:`text_path`): OpenCV's ``VideoCapture`` crashes the process (a segfault) on the lone
surrogates Python keeps for undecodable bytes, and JSON, YAML and FiftyOne cannot store them. A
source or a file inside a folder source whose name is not UTF-8 is refused before any work.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvactive.errors import SourceError, VideoError
from cvactive.in_memory import as_image, is_path_like, source_items

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv"})
STREAM_PREFIXES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")


#: What a source may be: a path or pattern, an in-memory image, or a list of them (see the module text).
Source = Any  # str | Path | np.ndarray | PIL.Image.Image | Sequence[...] (PIL is not a dependency here)


@dataclass(frozen=True)
class FrameMeta:
    """Where an image came from (the provenance a record carries).

    Attributes:
        source: the file path, URL or camera index as given.
        frame: the frame index of a video frame (``None`` for a still image).
        timestamp: the frame's time in the video, in seconds (``None`` for a still image).
    """

    source: str
    frame: int | None = None
    timestamp: float | None = None


@dataclass
class SourceReport:
    """What a source read, and what it could not (path and reason for each failure)."""

    images: int = 0
    frames: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def fail(self, path: str, reason: str, strict: bool, error: type[SourceError] = SourceError) -> None:
        """Record a failure, or raise it when ``strict``."""
        if strict:
            raise error(f"{path}: {reason}")
        log.warning("skipped %s: %s", path, reason)
        self.failures.append((path, reason))


def text_path(path: str | Path, what: str = "source") -> str:
    """``path`` as text, refused with a :class:`SourceError` when its name is not valid UTF-8.

    Call it on every path before OpenCV, a JSON line or FiftyOne sees it.
    """
    from cvactive.errors import OutputError
    from cvactive.outputs import check_path_text

    try:
        check_path_text(path, what)
    except OutputError as err:
        raise SourceError(str(err)) from None
    return str(path)


def is_stream(source: str) -> bool:
    """True for a stream URL or a camera index such as ``"0"``."""
    return source.startswith(STREAM_PREFIXES) or source.isdigit()


def expand(source: str | Path) -> list[Path]:
    """The files a source names: one file, a folder (recursively, sorted) or a glob pattern.

    Raises:
        SourceError: the source does not exist, names no image or video file, or it (or a file it
            names) is not valid UTF-8.
    """
    text = text_path(source)
    path = Path(text)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        if not files:
            raise SourceError(f"folder {text!r} holds no image or video files")
        return _text_paths(files, text)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise SourceError(f"pattern {text!r} matches no files")
        return _text_paths(files, text)
    raise SourceError(f"source {text!r} does not exist")


def _text_paths(files: list[Path], source: str) -> list[Path]:
    """``files`` when every name is UTF-8; else a :class:`SourceError` naming how many are not, and the first."""
    bad = [f for f in files if not _is_text(str(f))]
    if bad:
        shown = os.fsencode(bad[0]).decode("utf-8", "replace")
        raise SourceError(
            f"{len(bad)} file(s) under {source!r} have names that are not valid UTF-8 (first: {shown!r}); "
            "rename them or move them out"
        )
    return files


def _is_text(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as BGR ``uint8``; raise :class:`SourceError` naming the path if unreadable."""
    import cv2

    text_path(path, "image")
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    if data is None:
        raise SourceError(f"{path}: file does not exist")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SourceError(f"{path}: not a readable image (empty or corrupt file)")
    return image


@dataclass
class VideoInfo:
    """What OpenCV reports of an opened video."""

    fps: float
    frame_count: int
    width: int
    height: int


def open_video(source: str) -> tuple[object, VideoInfo]:
    """Open a video file, stream URL or camera index with OpenCV.

    Raises:
        VideoError: it cannot be opened.
        SourceError: its name is not valid UTF-8 (OpenCV would crash on it).
    """
    import cv2

    text_path(source)
    target: int | str = int(source) if source.isdigit() else source
    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"{source}: cannot open video (missing, not a video, or unsupported codec)")
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or 0.0
    info = VideoInfo(
        fps=fps if fps > 0 and np.isfinite(fps) else 30.0,
        frame_count=int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
    )
    return cap, info


class Capture:
    """One opened video file, stream URL or camera: OpenCV's ``VideoCapture`` behind four calls.

    ``grab`` advances one frame without converting it to an array, ``retrieve`` converts the
    last grabbed frame (BGR ``uint8``), ``seek`` jumps to a frame index of a file. Callers
    outside this module never touch OpenCV's video API.

    Raises:
        VideoError: the source cannot be opened.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._cap, self.info = open_video(source)

    def grab(self) -> bool:
        """Advance to the next frame; ``False`` at the end of a file or when a stream stops."""
        return bool(self._cap.grab())  # type: ignore[attr-defined]

    def retrieve(self) -> np.ndarray | None:
        """The last grabbed frame as a BGR ``uint8`` array, or ``None`` when it cannot be decoded."""
        ok, image = self._cap.retrieve()  # type: ignore[attr-defined]
        return image if ok else None

    def seek(self, start: int) -> int:
        """Position a file at frame ``start`` (by index when the container allows it, else by
        grabbing); return the index it is at (smaller than ``start`` when the file is shorter)."""
        import cv2

        cap: Any = self._cap
        if start <= 0:
            return 0
        if cap.set(cv2.CAP_PROP_POS_FRAMES, start) and int(cap.get(cv2.CAP_PROP_POS_FRAMES)) == start:
            return start
        index = int(cap.get(cv2.CAP_PROP_POS_FRAMES) or 0)
        while index < start and cap.grab():
            index += 1
        return index

    def release(self) -> None:
        self._cap.release()  # type: ignore[attr-defined]


def write_image(path: str | Path, image: np.ndarray, jpeg_quality: int = 90) -> None:
    """Write a BGR ``uint8`` image (JPEG quality ``jpeg_quality`` for ``.jpg``).

    Raises:
        SourceError: the file cannot be written.
    """
    import cv2

    text_path(path, "image output")
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]):
        raise SourceError(f"cannot write {path}")


def write_video(
    path: str | Path, frames: Iterable[np.ndarray], *, fps: float, size: tuple[int, int], codec: str = "mp4v"
) -> int:
    """Encode frames into a video file with OpenCV's ``VideoWriter``; return how many were written.

    Args:
        path: the video file (its folder must exist); the container follows the suffix.
        frames: BGR ``uint8`` images ``(height, width, 3)``, each of ``size``; consumed one at a time.
        fps: frames per second the file declares.
        size: ``(width, height)`` in pixels.
        codec: the FourCC code of the encoder.

    Raises:
        VideoError: OpenCV cannot open a writer for ``path`` with ``codec``.
    """
    import cv2

    text_path(path, "video output")
    fourcc = cv2.VideoWriter_fourcc(*codec)  # type: ignore[attr-defined]
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    if not writer.isOpened():
        raise VideoError(f"cannot write a video to {path} (OpenCV has no {codec} encoder?)")
    count = 0
    try:
        for frame in frames:
            writer.write(frame)
            count += 1
    finally:
        writer.release()
    return count


def iter_video(
    source: str,
    *,
    stride: int = 1,
    start: int = 0,
    report: SourceReport | None = None,
    strict: bool = False,
) -> Iterator[tuple[np.ndarray, FrameMeta]]:
    """Yield every ``stride``-th frame of a video from frame ``start`` on.

    Skipped frames are only grabbed, not decoded into arrays. A video that ends before the
    frame count its header promised is reported (with the frame reached) as truncated.
    """
    if stride < 1:
        raise SourceError(f"stride must be at least 1, got {stride}")
    report = report if report is not None else SourceReport()
    try:
        cap, info = open_video(source)
    except VideoError as err:
        report.fail(source, str(err).split(": ", 1)[-1], strict, VideoError)
        return
    import cv2

    try:
        index = 0
        if start > 0:
            if not is_stream(source) and cap.set(cv2.CAP_PROP_POS_FRAMES, start):  # type: ignore[attr-defined]
                index = start
            while index < start:
                if not cap.grab():  # type: ignore[attr-defined]
                    break
                index += 1
        while True:
            if (index - start) % stride == 0:
                ok, frame = cap.read()  # type: ignore[attr-defined]
            else:
                ok, frame = cap.grab(), None  # type: ignore[attr-defined]
            if not ok:
                break
            if frame is not None:
                report.frames += 1
                yield frame, FrameMeta(source=source, frame=index, timestamp=index / info.fps)
            index += 1
        if not is_stream(source) and info.frame_count and index < info.frame_count - 1:
            report.fail(
                source,
                f"video ended at frame {index} of {info.frame_count} (truncated or corrupt)",
                strict,
                VideoError,
            )
        elif index == 0:
            report.fail(source, "no frame could be decoded", strict, VideoError)
    finally:
        cap.release()  # type: ignore[attr-defined]


def iter_frames(
    source: Source,
    *,
    stride: int = 1,
    report: SourceReport | None = None,
    strict: bool = False,
) -> Iterator[tuple[np.ndarray, FrameMeta]]:
    """Yield ``(image, meta)`` for every image and every ``stride``-th video frame of a source.

    Args:
        source: an image, a video, a folder, a glob pattern, a stream URL or a camera index; an
            in-memory image (metadata ``image-<i>``, ``i`` its place among the source's in-memory
            images); or a list of any of these, read in order (:data:`Source`).
        stride: keep every n-th frame of each video.
        report: collects counts and failures (a fresh one when ``None``).
        strict: raise on the first unreadable file instead of reporting and going on.

    Raises:
        SourceError: the source does not exist.
    """
    report = report if report is not None else SourceReport()
    if not is_path_like(source):
        yield from _iter_items(source_items(source), stride, report, strict)
        return
    text = str(source)
    if is_stream(text):
        yield from iter_video(text, stride=stride, report=report, strict=strict)
        return
    for path in expand(text):
        suffix = path.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            yield from iter_video(str(path), stride=stride, report=report, strict=strict)
            continue
        if suffix not in IMAGE_SUFFIXES:
            report.fail(str(path), f"unsupported file type {suffix!r}", strict)
            continue
        try:
            image = read_image(path)
        except SourceError as err:
            report.fail(str(path), str(err).split(": ", 1)[-1], strict)
            continue
        report.images += 1
        yield image, FrameMeta(source=str(path))


def _iter_items(
    items: list[Any], stride: int, report: SourceReport, strict: bool
) -> Iterator[tuple[np.ndarray, FrameMeta]]:
    """The frames of a list source: each path expanded in turn, each in-memory image as ``image-<i>``."""
    in_memory = 0
    for item in items:
        if is_path_like(item):
            yield from iter_frames(item, stride=stride, report=report, strict=strict)
            continue
        name = f"image-{in_memory}"
        in_memory += 1
        image = as_image(item, name)
        report.images += 1
        yield image, FrameMeta(source=name)
