"""Image checks: sizes, brightness, exact and near-duplicate images, and leakage between splits.

Reading pixels is the expensive part of a health check, so it is split in two:

* sizes come from the image header only (PIL reads a few bytes, no decode), for every image;
* pixel checks (brightness, a SHA-1 of the file, a 64-bit difference hash) decode a small
  version of the image (PIL's JPEG draft mode decodes at 1/8 scale), optionally on a seeded
  sample of images, in a few threads.

Both are cached in a JSON file keyed by path, file size and modification time, so a second
run over an unchanged data set reads no image. The maths (hashes, Hamming distances,
grouping, leakage) are pure functions over arrays below.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CACHE_VERSION = 1


# -- pure functions ------------------------------------------------------------------------
def dhash(gray: np.ndarray) -> np.int64:
    """64-bit difference hash of an ``(8, 9)`` grey array: a bit is set where a pixel is brighter than its left one.

    Returned as a signed int64 holding the 64 bits (numpy has no unsigned JSON-safe type).
    """
    g = np.asarray(gray, np.float32)
    if g.shape != (8, 9):
        raise ValueError(f"dhash needs an (8, 9) array, got {g.shape}")
    bits = (g[:, 1:] > g[:, :-1]).reshape(-1)
    return np.packbits(bits).view(">i8")[0].astype(np.int64)


def hamming_pairs(hashes: np.ndarray, max_distance: int, *, block_elems: int = 1 << 22) -> np.ndarray:
    """Index pairs ``(i, j)``, ``i < j``, whose 64-bit hashes differ in at most ``max_distance`` bits.

    Chunked all-pairs comparison (XOR and popcount over blocks of rows), so memory stays
    around ``block_elems`` × 9 bytes whatever the number of hashes.

    Returns:
        ``(P, 3)`` int64 array of ``i, j, distance``.
    """
    h = np.asarray(hashes, np.int64).view(np.uint64).reshape(-1)
    n = h.size
    out = [np.zeros((0, 3), np.int64)]
    rows = max(1, block_elems // max(n, 1))
    for start in range(0, n, rows):
        block = h[start : start + rows, None] ^ h[None, :]
        dist = np.bitwise_count(block)
        i, j = np.nonzero(dist <= max_distance)
        i = i + start
        keep = j > i
        out.append(np.stack([i[keep], j[keep], dist[i[keep] - start, j[keep]].astype(np.int64)], axis=1))
    return np.concatenate(out)


def exact_groups(keys: Sequence[str | None]) -> list[list[int]]:
    """Groups (lists of indices, each of size ≥ 2) of entries with the same non-empty key, in order of first index."""
    idx = [i for i, k in enumerate(keys) if k]
    if not idx:
        return []
    arr = np.asarray([keys[i] for i in idx])
    _, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
    idx_arr = np.asarray(idx)
    groups = [idx_arr[inverse == g].tolist() for g in np.flatnonzero(counts > 1)]
    return sorted(groups, key=lambda g: g[0])


def cross_split_pairs(pairs: np.ndarray, split: np.ndarray) -> np.ndarray:
    """The rows of an ``(P, ≥2)`` pair array whose two images are in different splits."""
    p = np.asarray(pairs, np.int64).reshape(-1, pairs.shape[1] if np.ndim(pairs) == 2 else 2)
    s = np.asarray(split)
    return p[s[p[:, 0]] != s[p[:, 1]]] if len(p) else p


def group_pairs(groups: list[list[int]]) -> np.ndarray:
    """``(P, 2)`` every pair ``i < j`` within each group."""
    rows = [(g[a], g[b]) for g in groups for a in range(len(g)) for b in range(a + 1, len(g))]
    return np.asarray(rows, np.int64).reshape(-1, 2)


# -- reading images -------------------------------------------------------------------------
@dataclass
class ImageInfo:
    """What the image checks learned about the images of a table (arrays of length I)."""

    width: np.ndarray
    height: np.ndarray
    brightness: np.ndarray  # mean grey level 0-255, NaN where not checked
    dhash: np.ndarray  # int64, 0 where not checked
    sha1: list[str | None]
    checked: np.ndarray  # bool, pixel checks done
    unreadable: list[tuple[int, str]] = field(default_factory=list)  # (image index, reason)
    cache_hits: int = 0


def _stat_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _read_one(path: str, pixels: bool) -> dict[str, Any]:
    from PIL import Image

    if not pixels:
        with Image.open(path) as im:
            return {"w": im.size[0], "h": im.size[1]}
    data = Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        im.draft("L", (64, 64))  # JPEG: decode at reduced scale
        small = im.convert("L")
        small.thumbnail((64, 64))
        arr = np.asarray(small, np.float32)
        tiny = np.asarray(small.resize((9, 8), Image.Resampling.BILINEAR), np.float32)
    return {
        "w": w,
        "h": h,
        "b": round(float(arr.mean()), 3),
        "d": int(dhash(tiny)),
        "s": hashlib.sha1(data).hexdigest(),
    }


def _load_cache(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        log.warning("ignoring unreadable image cache %s (%s)", path, err)
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    entries = data.get("entries", {})
    return entries if isinstance(entries, dict) else {}


def read_images(
    paths: Sequence[str],
    *,
    pixels: np.ndarray | None = None,
    cache: str | Path | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> ImageInfo:
    """Sizes of every image, and brightness / hashes of those where ``pixels`` is True.

    Args:
        paths: image paths (``""`` for an image with no file: it is skipped).
        pixels: ``(I,)`` bool, which images get the pixel checks (default: none).
        cache: JSON cache file to read and update (``None``: no cache).
        workers: reader threads (default: the CPU count, at most 8).
        progress: show a progress bar.
    """
    from tqdm import tqdm

    n = len(paths)
    want = np.zeros(n, bool) if pixels is None else np.asarray(pixels, bool)
    cache_path = None if cache is None else Path(cache)
    entries = _load_cache(cache_path)
    info = ImageInfo(
        width=np.full(n, np.nan),
        height=np.full(n, np.nan),
        brightness=np.full(n, np.nan),
        dhash=np.zeros(n, np.int64),
        sha1=[None] * n,
        checked=np.zeros(n, bool),
    )
    todo: list[int] = []
    keys: dict[int, tuple[int, int]] = {}
    for i, p in enumerate(paths):
        if not p:
            continue
        key = _stat_key(p)
        if key is None:
            info.unreadable.append((i, "file does not exist"))
            continue
        keys[i] = key
        hit = entries.get(p)
        if hit and tuple(hit.get("k", ())) == key and (not want[i] or "s" in hit):
            _fill(info, i, hit)
            info.cache_hits += 1
        else:
            todo.append(i)

    def job(i: int) -> tuple[int, dict[str, Any] | None, str]:
        try:
            return i, _read_one(paths[i], bool(want[i])), ""
        except Exception as err:  # PIL raises many types for a broken file; each is reported, not hidden
            return i, None, f"{type(err).__name__}: {err}"

    nworkers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=nworkers) as pool:
        results = pool.map(job, todo)
        for i, values, reason in tqdm(results, total=len(todo), desc="images", disable=not progress or not todo):
            if values is None:
                info.unreadable.append((i, reason))
                continue
            values["k"] = list(keys[i])
            entries[paths[i]] = values
            _fill(info, i, values)
    info.unreadable.sort()
    if cache_path is not None and todo:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "entries": entries}))
        tmp.replace(cache_path)
    return info


def _fill(info: ImageInfo, i: int, values: dict[str, Any]) -> None:
    info.width[i], info.height[i] = values["w"], values["h"]
    if "s" in values:
        info.brightness[i] = values["b"]
        info.dhash[i] = values["d"]
        info.sha1[i] = values["s"]
        info.checked[i] = True
