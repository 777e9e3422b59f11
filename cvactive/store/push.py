"""Push scored records into a FiftyOne data set for review: batched, idempotent, concurrent-safe upserts.

A push runs in three steps per batch of records:

1. **resolve** (:mod:`cvactive.store.resolve`): each record's sample key (``cva_key``) and image
   file, extracting video frames that have no saved image;
2. **convert** (:mod:`cvactive.store.fields`): the record's boxes and fields as plain values, its
   tags, whether it enters the review queue;
3. **write** (:mod:`cvactive.store.write`): new samples inserted in bulk, existing ones updated
   with a compare-and-set that merges what reviewers did (:mod:`cvactive.store.merge`).

Then the review queue is refreshed (:mod:`cvactive.store.queue`) and, when the records carry
embeddings, FiftyOne Brain runs on them (:mod:`cvactive.store.brain`). Pushing the same input
twice, re-running a push killed midway, or two processes pushing overlapping records at once
leave one sample per image/frame with its latest scores. Samples imported from a YOLO data set
are keyed by their image path, so predictions pushed for those images land on the imported
samples beside their ``ground_truth``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvactive.errors import RecordError, StoreError
from cvactive.record import ImageRecord
from cvactive.store._db import check_dataset_name, connect, open_dataset
from cvactive.store.fields import EMBEDDING_FIELD, detection_values, field_values
from cvactive.store.provenance import ProvenanceIndex
from cvactive.store.queue import DISPLAY_CONF, review_settings, update_review_queue
from cvactive.store.resolve import image_metadata, locate
from cvactive.store.tags import KEY_FIELD, TO_REVIEW, chosen_for_review, merge_tags, record_tags
from cvactive.store.write import RawWriter, Update

log = logging.getLogger(__name__)


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
        queued: samples of this push that entered the review queue.
        retries: sample updates merged again because someone changed the sample meanwhile.
        embedded: records of this push that carried an embedding (the Brain runs only then).
        embeddings: samples with an embedding after the push (Brain runs cover them).
        map_method: how the Brain's 2-D map was made (``umap``, ``tsne``, ``pca``; ``""`` when not run).
        discarded: the push created the data set but wrote no sample into it, so it was deleted
            again (a failed push leaves no new empty data set behind).
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
    queued: int = 0
    retries: int = 0
    embedded: int = 0
    embeddings: int = 0
    map_method: str = ""
    discarded: bool = False


@dataclass
class _Push:
    """The options of one push, shared by its batches."""

    writer: RawWriter
    known: dict[str, str]
    round_: int | None
    strategy: str | None
    tags: list[str]
    review: bool | None
    label_field: str
    frames_root: Path | None
    bases: list[Path]
    provenance: ProvenanceIndex = field(default_factory=ProvenanceIndex)


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


def _convert(ctx: _Push, key: str, record: ImageRecord, image: Path) -> tuple[list[str], dict[str, Any], list[dict]]:
    """The tags, plain field values (key included, predictions not) and boxes of one record."""
    prov = record.extra.get("provenance") or ctx.provenance.lookup(image)
    chosen = record.selection
    rules = record.harvested.rules if record.harvested is not None else ()
    review = ctx.review if ctx.review is not None else chosen_for_review(ctx.strategy, chosen, rules)
    tag_list = record_tags(
        record.extra, round_=ctx.round_, strategy=ctx.strategy, selection=chosen, tags=ctx.tags, review=review,
        rules=rules,
    )  # fmt: skip
    if prov:
        tag_list = merge_tags(tag_list, ["synthetic"])
    values = field_values(
        record, label_field=ctx.label_field, round_=ctx.round_, provenance=prov, strategy=ctx.strategy
    )
    values = {k: v for k, v in values.items() if v is not None}
    values[KEY_FIELD] = key
    # a frame (saved by a harvest or extracted by push, from a decoded BGR image) has the record's
    # size and 3 channels: its header is not read again
    written = record.frame is not None and image != Path(record.source).resolve()
    values["metadata"] = image_metadata(image, record.width, record.height, 3 if written else None)
    return tag_list, values, detection_values(record)


def _push_chunk(ctx: _Push, chunk: list[ImageRecord], summary: PushSummary) -> None:
    """Resolve, convert and write one batch of records."""
    summary.records += len(chunk)
    located, skipped, extracted = locate(chunk, ctx.bases, ctx.frames_root)
    summary.skipped.extend(skipped)
    summary.frames_extracted += extracted
    writer = ctx.writer
    new_docs: list[dict[str, Any]] = []
    updates: dict[str, Update] = {}
    for key, (record, image) in located.items():
        tag_list, values, dets = _convert(ctx, key, record, image)
        writer.declare(values, dets)
        summary.boxes += len(dets)
        summary.embedded += EMBEDDING_FIELD in values
        summary.queued += TO_REVIEW in tag_list
        sid = ctx.known.get(key) or ctx.known.get(str(image))
        if sid is None:
            values[ctx.label_field] = writer.detections(dets)
            new_docs.append(writer.new_doc(str(image), tag_list, values.pop("metadata"), values))
        else:
            updates[sid] = Update(key=key, values=values, tags=tag_list, dets=dets)
    lost = writer.insert(new_docs)  # keys another process inserted first become updates
    for doc in new_docs:
        if doc[KEY_FIELD] not in lost:
            ctx.known[doc[KEY_FIELD]] = str(doc["_id"])
    if lost:
        ids = writer.ids_of(list(lost))
        for key, doc in lost.items():
            values = {k: v for k, v in doc.items() if k not in ("_id", "filepath", "tags", "created_at", "_rand")}
            dets = [{k: v for k, v in d.items() if k not in ("_id", "_cls", "attributes", "tags")}
                    for d in values.pop(ctx.label_field)["detections"]]  # fmt: skip
            updates[ids[key]] = Update(key=key, values=values, tags=doc["tags"], dets=dets)
            ctx.known[key] = ids[key]
    summary.retries += writer.update(updates)
    summary.added += len(new_docs) - len(lost)
    summary.updated += len(updates)
    summary.batches += 1
    log.info(
        "batch %d: %d added, %d updated (%d records so far)",
        summary.batches,
        len(new_docs) - len(lost),
        len(updates),
        summary.records,
    )


def push_records(
    records: Iterable[ImageRecord],
    dataset: str,
    *,
    round_: int | None = None,
    strategy: str | None = None,
    tags: Iterable[str] = (),
    review: bool | None = None,
    label_field: str = "predictions",
    review_score: str | None = "entropy_max",
    display_conf: float = DISPLAY_CONF,
    brain: bool = True,
    batch_size: int = 500,
    frames_dir: str | Path | None = None,
    base_dir: str | Path | None = None,
    create: bool = True,
    progress: bool = True,
    total: int | None = None,
) -> PushSummary:
    """Upsert records into the FiftyOne data set ``dataset``.

    Args:
        records: scored records (a scores file, a harvest manifest or a selection file).
        dataset: the data set name (created, persistent, when missing and ``create``).
        round_: the active-learning round; tags ``round-<n>`` (else ``extra["round"]``).
        strategy: the selection strategy; tags ``strategy:<name>`` (else the strategy of the
            record's :attr:`~cvactive.record.ImageRecord.selection`).
            Harvest rules (:attr:`~cvactive.record.ImageRecord.harvested`) become ``rule:<name>`` tags.
        tags: further tags for every sample.
        review: put the samples in the review queue (tag ``to-review``): ``True`` all, ``False``
            none, ``None`` (default) those selected or harvested for review (a strategy, a rank
            or harvest rules), not plain predictions such as those pushed for evaluation.
        label_field: the ``fo.Detections`` field for the predictions.
        review_score: the image score the ``review-queue`` view sorts by, descending.
        display_conf: the review queue hides predictions below this confidence (they stay in
            the field; ``cvactive pull`` ignores them too).
        brain: run FiftyOne Brain (similarity, 2-D map, uniqueness) when the records carry embeddings.
        batch_size: records per database write.
        frames_dir: where frames of videos without a saved image (no ``path``) are extracted;
            such records are skipped when ``None``.
        base_dir: a folder relative image paths may be relative to (the input file's folder).
        create: create the data set when it does not exist (else a :class:`StoreError`).
        progress: show a progress bar.
        total: the number of records, for the progress bar.

    Returns:
        A :class:`PushSummary`; records whose image file is missing are in ``skipped``. A data
        set this push created is deleted again when the push fails or writes no sample
        (``discarded``); an existing data set is never deleted.

    Raises:
        StoreError: the database is unreachable, or the data set is missing and not ``create``.
    """
    if batch_size < 1:
        raise StoreError(f"batch_size must be at least 1, got {batch_size}")
    if not 0 <= display_conf <= 1:
        raise StoreError(f"display_conf must lie in [0, 1], got {display_conf}")
    chunks = _chunks(records, batch_size)
    first = next(chunks, None)  # a malformed input fails here, before the database is touched
    check_dataset_name(dataset)
    fo = connect()
    created = create and not fo.dataset_exists(dataset)
    ds = open_dataset(dataset, create=create)
    try:
        summary = _push_all(ds, first, chunks, round_=round_, strategy=strategy, tags=tags, review=review,
                            label_field=label_field, review_score=review_score, display_conf=display_conf,
                            brain=brain, frames_dir=frames_dir, base_dir=base_dir, progress=progress, total=total,
                            discard=created)  # fmt: skip
    except BaseException:
        if created:
            _discard_if_empty(ds)
        raise
    return summary


def _discard_if_empty(ds: Any) -> bool:
    """Delete a data set this push created when it holds no sample; True when it was deleted."""
    try:
        ds.reload()
        if len(ds) == 0:
            ds.delete()
            return True
    except Exception as err:  # the original error matters more than this clean-up's
        log.warning("could not delete the empty data set %s: %s", ds.name, err)
    return False


def _push_all(
    ds: Any,
    first: list[ImageRecord] | None,
    chunks: Iterator[list[ImageRecord]],
    *,
    round_: int | None,
    strategy: str | None,
    tags: Iterable[str],
    review: bool | None,
    label_field: str,
    review_score: str | None,
    display_conf: float,
    brain: bool,
    frames_dir: str | Path | None,
    base_dir: str | Path | None,
    progress: bool,
    total: int | None,
    discard: bool,
) -> PushSummary:
    """The body of :func:`push_records` once the data set is open."""
    import fiftyone as fo
    from tqdm import tqdm

    summary = PushSummary(dataset=ds.name)
    ctx = _Push(
        writer=RawWriter(fo, ds, label_field),
        known={k: sid for k, (sid, _) in existing_keys(ds).items()},
        round_=round_, strategy=strategy, tags=list(tags), review=review, label_field=label_field,
        frames_root=Path(frames_dir) if frames_dir is not None else None,
        bases=[Path(base_dir).resolve()] if base_dir is not None else [],
    )  # fmt: skip
    bar = tqdm(total=total, desc=f"push -> {ds.name}", unit="rec", disable=not progress)
    try:
        for chunk in itertools.chain([first] if first else [], chunks):
            _push_chunk(ctx, chunk, summary)
            bar.update(len(chunk))
    finally:
        bar.close()
    ds.reload()  # the documents were written behind FiftyOne's back
    if discard and _discard_if_empty(ds):
        summary.discarded = True
        return summary
    if brain and summary.embedded:
        from cvactive.store.brain import run_brain

        result = run_brain(ds, progress=progress)
        summary.embeddings, summary.map_method = result.samples, result.map_method
    _refresh(ds, summary, label_field=label_field, review_score=review_score, display_conf=display_conf)
    summary.samples = len(ds)
    summary.review_queue = len(ds.match_tags(TO_REVIEW))
    return summary


def _refresh(ds: Any, summary: PushSummary, *, label_field: str, review_score: str | None, display_conf: float) -> None:
    """The review queue after a push: this push's settings when it queued samples, else the data set's."""
    settings = review_settings(ds)
    if summary.queued or not settings:
        update_review_queue(ds, label_field=label_field, review_score=review_score, display_conf=display_conf)
    else:
        update_review_queue(
            ds,
            label_field=settings.get("label_field", label_field),
            review_score=settings.get("score", review_score),
            display_conf=float(settings.get("display_conf", display_conf)),
        )


def push_file(path: str | Path, dataset: str, **options: Any) -> PushSummary:
    """Push a scores file, a harvest manifest or a selection file (JSON lines of records).

    Frames of videos that have no saved image are extracted to ``<path>.frames/``; relative
    image paths may be relative to the file's folder. ``options`` are :func:`push_records`'s.

    Raises:
        RecordError: the file is missing or a line is not a record.
        StoreError: the database is unreachable.
    """
    from cvactive.errors import OutputError
    from cvactive.io import read_jsonl
    from cvactive.outputs import check_path_text

    try:
        p = check_path_text(path, "input")  # FiftyOne cannot store the frames folder named after it
    except OutputError as err:
        raise RecordError(str(err)) from None
    if not p.is_file():  # before touching the database
        raise RecordError(f"{p}: input file does not exist")
    with p.open(encoding="utf-8") as fh:
        total = sum(1 for line in fh if line.strip())
    options.setdefault("frames_dir", Path(str(p) + ".frames"))
    options.setdefault("base_dir", p.parent)
    return push_records(read_jsonl(p), dataset, total=total, **options)
