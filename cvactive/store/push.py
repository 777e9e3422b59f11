"""Push scored records into a FiftyOne data set for review: batched, idempotent upserts.

Each record becomes one sample keyed by ``cva_key`` (:attr:`ImageRecord.key` with the source
made absolute: the image path, or ``<video>#<frame>``). A push looks the keys of the data set
up once, adds the new samples with batched ``add_samples`` and updates the existing ones with
one ``set_values`` per field, so pushing the same input twice, or re-running a push killed
midway, leaves one sample per image/frame carrying its latest scores. Samples imported from a
YOLO data set are keyed by their image path, so predictions pushed for those images land on
the imported samples beside their ``ground_truth``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvactive.errors import RecordError, SourceError, StoreError
from cvactive.record import ImageRecord
from cvactive.sources import is_stream
from cvactive.store._db import open_dataset
from cvactive.store.convert import (
    KEY_FIELD,
    REVIEW_VIEW,
    TO_REVIEW,
    ProvenanceIndex,
    merge_tags,
    provenance_fields,
    record_tags,
    xyxy_to_tlwh,
)

log = logging.getLogger(__name__)

#: Sample fields a push never writes an image score into (it prefixes ``score_`` instead).
_RESERVED = frozenset(
    {"id", "_id", "filepath", "tags", "metadata", "media_type", "created_at", "last_modified_at", "ground_truth"}
)
#: Attributes of a FiftyOne Detection a per-box measure may not overwrite.
_DETECTION_RESERVED = frozenset({"id", "_id", "tags", "label", "bounding_box", "mask", "confidence", "index"})


@dataclass
class PushSummary:
    """What a push did.

    Attributes:
        dataset: the data set name.
        records: records read.
        added: new samples.
        updated: existing samples whose predictions and scores were replaced.
        boxes: predicted boxes written.
        frames_extracted: video frames written to the frame cache for display.
        skipped: ``(key, reason)`` of each record that could not be pushed (missing image file ...).
        batches: batches written.
        samples: samples in the data set after the push.
        review_queue: samples tagged ``to-review`` after the push.
    """

    dataset: str
    records: int = 0
    added: int = 0
    updated: int = 0
    boxes: int = 0
    frames_extracted: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    batches: int = 0
    samples: int = 0
    review_queue: int = 0


def _resolve_file(text: str, base_dirs: Iterable[Path]) -> Path | None:
    p = Path(text)
    if p.is_absolute():
        return p if p.is_file() else None
    for base in (Path.cwd(), *base_dirs):
        cand = base / p
        if cand.is_file():
            return cand.resolve()
    return None


def sample_key(record: ImageRecord, base_dirs: Iterable[Path] = ()) -> str:
    """The ``cva_key`` of a record: its key with a local source made absolute."""
    source = record.source
    if not is_stream(source):
        found = _resolve_file(source, base_dirs)
        source = str(found) if found is not None else str(Path(source).resolve())
    return source if record.frame is None else f"{source}#{record.frame}"


def extract_frames(video: str, frames: Iterable[int], out_dir: str | Path) -> dict[int, Path]:
    """Save the given frames of a video as JPEGs in ``out_dir`` (kept ones are reused); return frame -> path.

    Frames are read in order with ``grab`` (decoding only the frames asked for), which is exact
    where seeking in a compressed video is not.

    Raises:
        SourceError: the video cannot be opened.
    """
    import cv2

    from cvactive.sources import open_video

    out = Path(out_dir)
    wanted = sorted({int(f) for f in frames})
    paths = {f: out / f"{f:07d}.jpg" for f in wanted}
    todo = [f for f in wanted if not paths[f].is_file()]
    if not todo:
        return paths
    out.mkdir(parents=True, exist_ok=True)
    cap: Any
    cap, _ = open_video(video)
    found: dict[int, Path] = {f: p for f, p in paths.items() if f not in todo}
    try:
        index = 0
        for target in todo:
            while index < target:
                if not cap.grab():
                    break
                index += 1
            if index != target:
                break
            ok, image = cap.read()
            index += 1
            if not ok:
                break
            tmp = paths[target].with_suffix(".tmp.jpg")
            cv2.imwrite(str(tmp), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
            tmp.replace(paths[target])
            found[target] = paths[target]
    finally:
        cap.release()
    return found


def _frame_cache(frames_dir: Path, video: str) -> Path:
    digest = hashlib.sha1(video.encode()).hexdigest()[:8]
    return frames_dir / f"{Path(video).stem}-{digest}"


def detection_values(record: ImageRecord) -> list[dict[str, Any]]:
    """Each box as plain values: ``label``, normalised top-left ``bounding_box``, ``confidence``,
    ``class_id`` and every per-box measure (a NaN measure is left out)."""
    boxes = xyxy_to_tlwh(record.xyxy, record.width, record.height).tolist()
    names = record.class_names
    conf = record.confidence.tolist()
    cls = record.class_id.tolist()
    measures = {(k if k not in _DETECTION_RESERVED else f"score_{k}"): v.tolist() for k, v in record.box_scores.items()}
    out = []
    for i in range(len(record)):
        det: dict[str, Any] = {"label": names[i], "bounding_box": boxes[i], "confidence": conf[i], "class_id": cls[i]}
        for key, values in measures.items():
            if values[i] == values[i]:  # not NaN
                det[key] = values[i]
        out.append(det)
    return out


def detections_of(fo: Any, record: ImageRecord) -> Any:
    """The record's boxes as ``fo.Detections`` (see :func:`detection_values`)."""
    return fo.Detections(detections=[fo.Detection(**d) for d in detection_values(record)])


def _score_field(name: str, label_field: str) -> str:
    return f"score_{name}" if name in _RESERVED or name in (label_field, KEY_FIELD) else name


def field_values(
    record: ImageRecord, *, label_field: str, round_: int | None, provenance: dict[str, Any] | None
) -> dict[str, Any]:
    """The plain sample fields a push writes for a record besides its predictions, ``filepath``,
    ``tags`` and ``cva_key``: image scores, video source/frame/timestamp, round, selection rank
    and utility, and the provenance of a synthetic image. ``None`` values are not written."""
    values: dict[str, Any] = {}
    for name, score in record.image_scores.items():
        values[_score_field(name, label_field)] = float(score) if score == score else None
    if record.frame is not None:
        values["source_video"] = str(Path(record.source).resolve()) if not is_stream(record.source) else record.source
        values["frame_index"] = int(record.frame)
    if record.timestamp is not None:
        values["timestamp"] = float(record.timestamp)
    rnd = round_ if round_ is not None else record.extra.get("round")
    if rnd is not None:
        values["cva_round"] = int(rnd)
    for key in ("rank", "utility"):
        if isinstance(record.extra.get(key), (int, float)):
            values[f"selection_{key}"] = float(record.extra[key])
    if provenance:
        values.update(provenance_fields(provenance))
    return values


def sample_fields(
    fo: Any,
    record: ImageRecord,
    *,
    label_field: str,
    round_: int | None,
    provenance: dict[str, Any] | None,
) -> dict[str, Any]:
    """The sample fields of a record as FiftyOne objects (the one-sample-at-a-time route)."""
    values = field_values(record, label_field=label_field, round_=round_, provenance=provenance)
    return {label_field: detections_of(fo, record), **values}


def update_review_view(dataset: Any, review_score: str | None = "entropy_max") -> Any:
    """(Re)save the view ``review-queue``: ``to-review`` samples by descending ``review_score``.

    A score field the data set does not have is logged and the queue is left unsorted.
    """
    view = dataset.match_tags(TO_REVIEW)
    if review_score:
        if dataset.has_sample_field(review_score):
            view = view.sort_by(review_score, reverse=True)
        else:
            scores = sorted(
                n
                for n, f in dataset.get_field_schema().items()
                if type(f).__name__ == "FloatField" and n not in ("timestamp",)
            )
            log.warning(
                "review score %r is not a field of %s; the review queue is unsorted (score fields: %s)",
                review_score,
                dataset.name,
                ", ".join(scores) or "none",
            )
    dataset.save_view(REVIEW_VIEW, view, overwrite=True)
    return view


def _chunks(items: Iterable[ImageRecord], size: int) -> Iterator[list[ImageRecord]]:
    chunk: list[ImageRecord] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def existing_keys(dataset: Any) -> dict[str, tuple[str, list[str]]]:
    """``cva_key`` -> (sample id, tags) of the data set, in one query; samples with no key are
    keyed by their file path."""
    if len(dataset) == 0:
        return {}
    has_key = dataset.has_sample_field(KEY_FIELD)
    fields = ["id", "filepath", "tags"] + ([KEY_FIELD] if has_key else [])
    cols = dataset.values(fields)
    keys = cols[3] if has_key else [None] * len(cols[0])
    out: dict[str, tuple[str, list[str]]] = {}
    for sid, path, tags, key in zip(cols[0], cols[1], cols[2], keys):
        out[key or path] = (sid, list(tags or []))
    return out


def push_records(
    records: Iterable[ImageRecord],
    dataset: str,
    *,
    round_: int | None = None,
    strategy: str | None = None,
    tags: Iterable[str] = (),
    label_field: str = "predictions",
    review_score: str | None = "entropy_max",
    batch_size: int = 500,
    frames_dir: str | Path | None = None,
    base_dir: str | Path | None = None,
    create: bool = True,
    progress: bool = True,
    total: int | None = None,
) -> PushSummary:
    """Upsert records into the FiftyOne data set ``dataset`` as samples to review.

    Args:
        records: scored records (a scores file, a harvest manifest or a selection file).
        dataset: the data set name (created, persistent, when missing and ``create``).
        round_: the active-learning round; tags ``round-<n>`` (else ``extra["round"]``).
        strategy: the selection strategy; tags ``strategy:<name>`` (else ``extra["strategy"]``).
            Harvest rules in ``extra["rules"]`` become ``rule:<name>`` tags.
        tags: further tags for every sample.
        label_field: the ``fo.Detections`` field for the predictions.
        review_score: the image score the ``review-queue`` view sorts by, descending.
        batch_size: records per database write.
        frames_dir: where frames of videos without a saved image (no ``path``) are extracted;
            such records are skipped when ``None``.
        base_dir: a folder relative image paths may be relative to (the input file's folder).
        create: create the data set when it does not exist (else a :class:`StoreError`).
        progress: show a progress bar.
        total: the number of records, for the progress bar.

    Returns:
        A :class:`PushSummary`; records whose image file is missing are in ``skipped``.

    Raises:
        StoreError: the database is unreachable, or the data set is missing and not ``create``.
    """
    if batch_size < 1:
        raise StoreError(f"batch_size must be at least 1, got {batch_size}")
    from tqdm import tqdm

    ds = open_dataset(dataset, create=create)
    import fiftyone as fo

    bases = [Path(base_dir).resolve()] if base_dir is not None else []
    summary = PushSummary(dataset=ds.name)
    known = existing_keys(ds)
    provenance = ProvenanceIndex()
    extra_tags = list(tags)
    frames_root = Path(frames_dir) if frames_dir is not None else None
    writer = _RawWriter(fo, ds, label_field)
    bar = tqdm(total=total, desc=f"push -> {ds.name}", unit="rec", disable=not progress)
    try:
        for chunk in _chunks(records, batch_size):
            _push_chunk(
                writer, chunk, known, summary,
                round_=round_, strategy=strategy, tags=extra_tags, label_field=label_field,
                frames_root=frames_root, bases=bases, provenance=provenance,
            )  # fmt: skip
            bar.update(len(chunk))
    finally:
        bar.close()
    if summary.added and not _has_index(ds):
        ds.create_index(KEY_FIELD)
    ds.reload()  # the documents were written behind FiftyOne's back
    update_review_view(ds, review_score)
    summary.samples = len(ds)
    summary.review_queue = len(ds.match_tags(TO_REVIEW))
    return summary


def _has_index(ds: Any) -> bool:
    return any(KEY_FIELD in name for name in ds.list_indexes())


def _image_for(
    record: ImageRecord, bases: list[Path], frames_root: Path | None, pending: dict[str, list[int]]
) -> tuple[Path | None, str | None]:
    """The image file a record is shown with, or ``None`` and why not (frames pending extraction -> no reason)."""
    saved = record.extra.get("path")
    if saved:
        found = _resolve_file(str(saved), bases)
        return (found, None) if found is not None else (None, f"saved frame image {saved} does not exist")
    if record.frame is not None:
        if frames_root is None:
            return None, "video frame has no saved image (no 'path') and no frame cache folder was given"
        if is_stream(record.source):
            return None, "frame of a live stream has no saved image"
        video = _resolve_file(record.source, bases)
        if video is None:
            return None, f"video {record.source} does not exist"
        pending.setdefault(str(video), []).append(int(record.frame))
        return None, None
    found = _resolve_file(record.source, bases)
    return (found, None) if found is not None else (None, f"image file {record.source} does not exist")


def _push_chunk(
    writer: _RawWriter,
    chunk: list[ImageRecord],
    known: dict[str, tuple[str, list[str]]],
    summary: PushSummary,
    *,
    round_: int | None,
    strategy: str | None,
    tags: list[str],
    label_field: str,
    frames_root: Path | None,
    bases: list[Path],
    provenance: ProvenanceIndex,
) -> None:
    summary.records += len(chunk)
    pending: dict[str, list[int]] = {}
    located: dict[str, tuple[ImageRecord, Path | None]] = {}  # key -> record, image (last one wins)
    for record in chunk:
        key = sample_key(record, bases)
        image, reason = _image_for(record, bases, frames_root, pending)
        if reason is not None:
            summary.skipped.append((key, reason))
            log.warning("skipped %s: %s", key, reason)
            continue
        located[key] = (record, image)
    for video, frames in pending.items():
        if frames_root is None:  # frames are only queued when there is a frame cache
            break
        try:
            extracted = extract_frames(video, frames, _frame_cache(frames_root, video))
        except SourceError as err:
            extracted = {}
            log.warning("cannot extract frames of %s: %s", video, err)
        summary.frames_extracted += len(extracted)
        for key, (record, image) in list(located.items()):
            if image is None and record.frame is not None and key.startswith(video + "#"):
                if record.frame in extracted:
                    located[key] = (record, extracted[record.frame])
                else:
                    del located[key]
                    summary.skipped.append((key, f"frame {record.frame} could not be read from {video}"))
    new_docs: list[dict[str, Any]] = []
    updates: list[tuple[str, dict[str, Any]]] = []  # (sample id, {field: value})
    for key, (record, image) in located.items():
        if image is None:  # a frame whose extraction was not attempted (cannot happen)
            continue
        prov = record.extra.get("provenance") or provenance.lookup(image)
        tag_list = record_tags(record.extra, round_=round_, strategy=strategy, tags=tags)
        if prov and "synthetic" not in tag_list:
            tag_list = sorted([*tag_list, "synthetic"])
        values = field_values(record, label_field=label_field, round_=round_, provenance=prov)
        dets = detection_values(record)
        writer.declare(values, dets)
        values = {k: v for k, v in values.items() if v is not None}
        values[label_field] = writer.detections(dets)
        values[KEY_FIELD] = key
        summary.boxes += len(record)
        hit = known.get(key) or known.get(str(image))
        if hit is None:
            doc = writer.new_doc(str(image), tag_list, record.width, record.height, values)
            new_docs.append(doc)
            known[key] = (str(doc["_id"]), tag_list)
            continue
        sid, old_tags = hit
        values["tags"] = merge_tags(old_tags, tag_list)
        updates.append((sid, values))
        known[key] = (sid, values["tags"])
    writer.insert(new_docs)
    writer.update(updates)
    summary.added += len(new_docs)
    summary.updated += len(updates)
    summary.batches += 1
    log.info(
        "batch %d: %d added, %d updated (%d records so far)",
        summary.batches,
        len(new_docs),
        len(updates),
        summary.records,
    )


#: Python type of a plain value -> the FiftyOne field that holds it.
_FIELD_TYPES: dict[type, str] = {
    bool: "BooleanField",
    int: "IntField",
    float: "FloatField",
    str: "StringField",
    dict: "DictField",
}


class _RawWriter:
    """Writes samples as raw MongoDB documents in FiftyOne's own layout, in bulk.

    FiftyOne's ``add_samples`` builds and validates a mongoengine document per sample and per
    label, which costs about as much as writing them one at a time (see
    ``tools/bench_push.py``). This writer declares each new field in the data set's schema
    through FiftyOne's API first, then inserts plain documents with ``insert_many`` and updates
    with one ``bulk_write``. The document layout is that of fiftyone 1.22 (pinned); a test
    checks that FiftyOne reads the samples back field for field as it would have written them.
    """

    def __init__(self, fo: Any, ds: Any, label_field: str) -> None:
        from bson import ObjectId

        self._oid = ObjectId
        self.fo = fo
        self.ds = ds
        self.label_field = label_field
        if ds.media_type is None:
            ds.media_type = "image"
        elif ds.media_type != "image":
            raise StoreError(f"data set {ds.name!r} holds {ds.media_type} samples; push needs an image data set")
        self.coll = ds._sample_collection
        self.dataset_id = ds._doc.id
        self.declared = set(ds.get_field_schema(flat=True))
        if label_field in self.declared:
            field = ds.get_field(label_field)
            if getattr(field, "document_type", None) is not fo.Detections:
                raise StoreError(
                    f"field {label_field!r} of data set {ds.name!r} is not a Detections field; choose another "
                    "--label-field"
                )

    def _declare(self, path: str, value: Any) -> None:
        if path in self.declared:
            return
        ftype = _FIELD_TYPES.get(type(value))
        if ftype is None:
            return
        self.ds.add_sample_field(path, getattr(self.fo, ftype))
        self.declared.add(path)

    def declare(self, values: dict[str, Any], dets: list[dict[str, Any]]) -> None:
        """Add the fields of one sample (and the attributes of its boxes) to the schema where new."""
        fo = self.fo
        for name in (KEY_FIELD, self.label_field):
            if name not in self.declared:
                if name == KEY_FIELD:
                    self.ds.add_sample_field(name, fo.StringField)
                else:
                    self.ds.add_sample_field(name, fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
                self.declared.update(self.ds.get_field_schema(flat=True))
        for name, value in values.items():
            if value is not None:
                self._declare(name, value)
        for det in dets[:1]:
            for name, value in det.items():
                if name not in ("label", "bounding_box", "confidence"):
                    self._declare(f"{self.label_field}.detections.{name}", value)

    def detections(self, dets: list[dict[str, Any]]) -> dict[str, Any]:
        oid = self._oid
        return {
            "_cls": "Detections",
            "detections": [{"_id": oid(), "_cls": "Detection", "attributes": {}, "tags": [], **d} for d in dets],
        }

    @staticmethod
    def now() -> Any:
        from datetime import datetime, timezone

        t = datetime.now(timezone.utc).replace(tzinfo=None)
        return t.replace(microsecond=t.microsecond // 1000 * 1000)  # MongoDB keeps milliseconds

    def new_doc(self, filepath: str, tags: list[str], width: int, height: int, values: dict[str, Any]) -> dict:
        from fiftyone.core.odm.sample import _generate_rand

        now = self.now()
        return {
            "_id": self._oid(),
            "filepath": filepath,
            "tags": list(tags),
            "metadata": {"_cls": "ImageMetadata", "width": int(width), "height": int(height)},
            "created_at": now,
            "last_modified_at": now,
            "_media_type": "image",
            "_rand": _generate_rand(),
            "_dataset_id": self.dataset_id,
            **values,
        }

    def insert(self, docs: list[dict[str, Any]]) -> None:
        if docs:
            self.coll.insert_many(docs, ordered=False)

    def update(self, updates: list[tuple[str, dict[str, Any]]]) -> None:
        if not updates:
            return
        from pymongo import UpdateOne

        now = self.now()
        ops = [
            UpdateOne({"_id": self._oid(sid)}, {"$set": {**values, "last_modified_at": now}}) for sid, values in updates
        ]
        self.coll.bulk_write(ops, ordered=False)


def push_file(
    path: str | Path,
    dataset: str,
    **options: Any,
) -> PushSummary:
    """Push a scores file, a harvest manifest or a selection file (JSON lines of records).

    Frames of videos that have no saved image are extracted to ``<path>.frames/``; relative
    image paths may be relative to the file's folder. ``options`` are :func:`push_records`'s.

    Raises:
        RecordError: the file is missing or a line is not a record.
        StoreError: the database is unreachable.
    """
    from cvactive.io import read_jsonl

    p = Path(path)
    if not p.is_file():  # before touching the database
        raise RecordError(f"{p}: input file does not exist")
    with p.open(encoding="utf-8") as fh:
        total = sum(1 for line in fh if line.strip())
    options.setdefault("frames_dir", Path(str(p) + ".frames"))
    options.setdefault("base_dir", p.parent)
    return push_records(read_jsonl(p), dataset, total=total, **options)
