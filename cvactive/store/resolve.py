"""Where a pushed record's image is: its sample key, its file, the frames of videos, the file's metadata.

A record's sample key (``cva_key``) is :attr:`ImageRecord.key` with a local source made
absolute: the image path, or ``<video>#<frame>``. The file the App shows is the image itself,
a saved frame (the ``path`` of a harvest manifest, :attr:`ImageRecord.harvested`), or a frame extracted once from the
video into a frame cache folder.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cvactive.errors import SourceError
from cvactive.record import ImageRecord
from cvactive.sources import Capture, is_stream, write_image

log = logging.getLogger(__name__)


def resolve_file(text: str, base_dirs: Iterable[Path]) -> Path | None:
    """The existing file ``text`` names (absolute, or relative to the working folder or one of
    ``base_dirs``), with symbolic links resolved as import resolves them, so a record reached through
    a linked folder finds the sample imported from the real one."""
    p = Path(text)
    if p.is_absolute():
        return p.resolve() if p.is_file() else None
    for base in (Path.cwd(), *base_dirs):
        cand = base / p
        if cand.is_file():
            return cand.resolve()
    return None


def sample_key(record: ImageRecord, base_dirs: Iterable[Path] = ()) -> str:
    """The ``cva_key`` of a record: its key with a local source made absolute."""
    source = record.source
    if not is_stream(source):
        found = resolve_file(source, base_dirs)
        source = str(found) if found is not None else str(Path(source).resolve())
    return source if record.frame is None else f"{source}#{record.frame}"


#: Frames ahead of the current position from which :func:`extract_frames` seeks instead of grabbing.
SEEK_GAP = 48


def extract_frames(video: str, frames: Iterable[int], out_dir: str | Path) -> dict[int, Path]:
    """Save the given frames of a video as JPEGs in ``out_dir`` (kept ones are reused); return frame -> path.

    Frames are visited in order. A frame more than :data:`SEEK_GAP` frames ahead is reached by a
    seek (:meth:`cvactive.sources.Capture.seek`: OpenCV decodes from the key frame before it, and
    it checks that it landed on the frame, grabbing on where it did not), a nearer one by
    grabbing the frames between; a late frame of a long video is never reached by decoding the
    video from frame 0. Only the frames asked for are converted to images.

    Raises:
        SourceError: the video cannot be opened.
    """
    out = Path(out_dir)
    wanted = sorted({int(f) for f in frames})
    paths = {f: out / f"{f:07d}.jpg" for f in wanted}
    todo = [f for f in wanted if not paths[f].is_file()]
    if not todo:
        return paths
    out.mkdir(parents=True, exist_ok=True)
    cap = Capture(video)
    found: dict[int, Path] = {f: p for f, p in paths.items() if f not in todo}
    try:
        index = 0  # the frame the next grab reads
        for target in todo:
            if target - index > SEEK_GAP:
                index = cap.seek(target)
            while index < target and cap.grab():
                index += 1
            if index != target:
                break
            image = cap.retrieve() if cap.grab() else None
            index += 1
            if image is None:
                break
            tmp = paths[target].with_suffix(f".{os.getpid()}.tmp.jpg")
            write_image(tmp, image, jpeg_quality=90)
            tmp.replace(paths[target])
            found[target] = paths[target]
    finally:
        cap.release()
    return found


def frame_cache(frames_dir: Path, video: str) -> Path:
    """The folder of a video's extracted frames inside ``frames_dir``."""
    digest = hashlib.sha1(video.encode()).hexdigest()[:8]
    return frames_dir / f"{Path(video).stem}-{digest}"


def image_for(
    record: ImageRecord, bases: list[Path], frames_root: Path | None, pending: dict[str, list[int]]
) -> tuple[Path | None, str | None]:
    """The image file a record is shown with, or ``None`` and why not.

    A video frame without a saved image is queued in ``pending`` (video -> frames) for
    extraction and returns ``(None, None)``.
    """
    saved = record.harvested.path if record.harvested is not None else None
    if saved:
        found = resolve_file(str(saved), bases)
        return (found, None) if found is not None else (None, f"saved frame image {saved} does not exist")
    if record.frame is not None:
        if frames_root is None:
            return None, "video frame has no saved image (no 'path') and no frame cache folder was given"
        if is_stream(record.source):
            return None, "frame of a live stream has no saved image"
        video = resolve_file(record.source, bases)
        if video is None:
            return None, f"video {record.source} does not exist"
        pending.setdefault(str(video), []).append(int(record.frame))
        return None, None
    found = resolve_file(record.source, bases)
    return (found, None) if found is not None else (None, f"image file {record.source} does not exist")


def locate(
    chunk: list[ImageRecord], bases: list[Path], frames_root: Path | None
) -> tuple[dict[str, tuple[ImageRecord, Path]], list[tuple[str, str]], int]:
    """The image of each record of a chunk, extracting video frames where needed.

    Returns:
        ``(located, skipped, frames_extracted)``: sample key -> (record, image file) (the last
        record of a key wins), ``(key, reason)`` of each record that has no image, and the
        number of frames extracted.
    """
    pending: dict[str, list[int]] = {}
    located: dict[str, tuple[ImageRecord, Path | None]] = {}
    skipped: list[tuple[str, str]] = []
    for record in chunk:
        key = sample_key(record, bases)
        image, reason = image_for(record, bases, frames_root, pending)
        if reason is not None:
            skipped.append((key, reason))
            log.warning("skipped %s: %s", key, reason)
            continue
        located[key] = (record, image)
    extracted_total = 0
    for video, frames in pending.items():
        if frames_root is None:  # frames are only queued when there is a frame cache
            break
        try:
            extracted = extract_frames(video, frames, frame_cache(frames_root, video))
        except SourceError as err:
            extracted = {}
            log.warning("cannot extract frames of %s: %s", video, err)
        extracted_total += len(extracted)
        for key, (record, image) in list(located.items()):
            if image is None and record.frame is not None and key.startswith(video + "#"):
                if record.frame in extracted:
                    located[key] = (record, extracted[record.frame])
                else:
                    del located[key]
                    skipped.append((key, f"frame {record.frame} could not be read from {video}"))
    done = {k: (r, img) for k, (r, img) in located.items() if img is not None}
    return done, skipped, extracted_total


#: PIL image modes -> channels (FiftyOne's ``ImageMetadata.num_channels``).
_MODE_CHANNELS = {"1": 1, "L": 1, "P": 1, "I": 1, "F": 1, "I;16": 1, "LA": 2, "RGB": 3, "YCbCr": 3, "LAB": 3}


#: JPEG start-of-frame markers (baseline, progressive, lossless ...; not DHT, JPG or DAC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_header(path: Path) -> tuple[int, int, int] | None:
    """``(width, height, channels)`` from a JPEG's frame header, reading only the segments before
    it; ``None`` for a file that is not a JPEG or whose header this cannot find.

    Pillow's ``Image.open`` parses every quantisation and Huffman table in Python on the way (1 of
    every 4 seconds of a 5,000-image push, ``tools/bench_push.py``); the frame header is all the
    metadata needs. Channels are the frame's components, as Pillow's modes count them (L 1,
    RGB/YCbCr 3, CMYK 4).
    """
    with open(path, "rb") as fh:
        if fh.read(2) != b"\xff\xd8":
            return None
        while True:
            if fh.read(1) != b"\xff":
                return None
            code = fh.read(1)
            while code == b"\xff":  # fill bytes
                code = fh.read(1)
            if not code:
                return None
            marker = code[0]
            if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length follows
                continue
            if marker in (0xD9, 0xDA):  # end of image or scan data before any frame header
                return None
            size = fh.read(2)
            if len(size) < 2:
                return None
            if marker in _JPEG_SOF:
                frame = fh.read(6)  # precision, height, width, components
                if len(frame) < 6:
                    return None
                return int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big"), frame[5]
            length = int.from_bytes(size, "big")
            if length < 2:  # a corrupt length would seek backwards (and loop for ever)
                return None
            fh.seek(length - 2, os.SEEK_CUR)


def image_metadata(path: Path, width: int, height: int, channels: int | None = None) -> dict[str, Any]:
    """FiftyOne's ``ImageMetadata`` of an image file as a document: size in bytes, MIME type,
    width, height and channels.

    With ``channels`` (a frame cvactive wrote from the record's decoded image: a harvest's saved
    frame or an extracted one) the record's ``width`` and ``height`` are the file's and nothing
    but its size is read. Otherwise (a user's image) the file's header is read (the record's size
    where it is unreadable)."""
    from PIL import Image

    if channels is not None:
        return {
            "_cls": "ImageMetadata",
            "size_bytes": path.stat().st_size,
            "mime_type": mimetypes.guess_type(str(path))[0] or "image/jpeg",
            "width": int(width),
            "height": int(height),
            "num_channels": int(channels),
        }
    try:
        found = jpeg_header(path)
        if found is not None and found[0] > 0 and found[1] > 0:
            width, height, channels = found
        else:
            with Image.open(path) as im:
                width, height = im.size
                channels = _MODE_CHANNELS.get(im.mode, len(im.getbands()))
    except OSError:
        log.debug("cannot read the header of %s; metadata from the record", path)
    meta: dict[str, Any] = {
        "_cls": "ImageMetadata",
        "size_bytes": path.stat().st_size,
        "mime_type": mimetypes.guess_type(str(path))[0] or "image/jpeg",
        "width": int(width),
        "height": int(height),
    }
    if channels is not None:
        meta["num_channels"] = int(channels)
    return meta
