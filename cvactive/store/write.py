"""Writing pushed samples as raw MongoDB documents in FiftyOne's layout: bulk inserts, and updates
that merge with whatever reviewers and other processes wrote meanwhile.

FiftyOne's ``add_samples`` builds and validates a mongoengine document per sample and per label,
which costs about as much as writing them one at a time (see ``tools/bench_push.py``). This
writer declares each new field in the data set's schema through FiftyOne's API (under
:func:`~cvactive.store._lock.dataset_lock`), then inserts plain documents with ``insert_many``
and updates them with one ``bulk_write``. The layout is fiftyone 1.22's (pinned); a test checks
that FiftyOne reads the samples back field for field as it would have written them.

Concurrency: the sample key has a unique index, so two pushers of one record leave one sample
(the loser's insert turns into an update). Sample tags are only added (``$addToSet``). An
update is a compare-and-set on ``last_modified_at`` (which FiftyOne and the App bump on every
edit, label tags included): a sample changed between the read and the write is read again and
merged again, so a tag put on in the App during a push is never overwritten. Each attempt also
writes a fresh token into ``cva_write``: which samples an attempt really wrote is read from the
token, not from the timestamp, which another writer can hit to the millisecond.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from cvactive.errors import StoreError
from cvactive.store._lock import dataset_lock
from cvactive.store.fields import EMBEDDING_FIELD
from cvactive.store.merge import REVIEWED_SUFFIX, carry_reviews, keep_unmatched
from cvactive.store.tags import FINISHED_TAGS, KEY_FIELD, TO_REVIEW

log = logging.getLogger(__name__)

#: Field holding the token of the last push attempt that wrote the sample.
WRITE_FIELD = "cva_write"
#: Times a sample changed by someone else during its update is re-read and merged again.
MAX_RETRIES = 20
#: Python type of a plain value -> the FiftyOne field that holds it.
_FIELD_TYPES: dict[type, str] = {bool: "BooleanField", int: "IntField", float: "FloatField", str: "StringField"}
#: Attributes of pushed boxes a re-push compares with the old boxes.
_BOX_KEYS = ("_id", "label", "bounding_box", "tags")


@dataclass
class Update:
    """One sample's pending update: the model's fields to set, tags to add, boxes to merge."""

    key: str
    values: dict[str, Any]
    tags: list[str]
    dets: list[dict[str, Any]] = field(default_factory=list)


def now() -> datetime:
    """UTC now, naive, at MongoDB's millisecond precision."""
    t = datetime.now(timezone.utc).replace(tzinfo=None)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def ensure_key_index(ds: Any) -> None:
    """A unique index on ``cva_key`` of the data set's samples (samples without a key are exempt).

    Raises:
        StoreError: the data set already holds two samples with one key (from pushes before
            the index existed); the message names one.
    """
    from pymongo.errors import DuplicateKeyError, OperationFailure

    coll = ds._sample_collection
    for name, info in coll.index_information().items():
        if info.get("key") == [(KEY_FIELD, 1)]:
            if info.get("unique"):
                return
            with dataset_lock(ds, "index"):
                coll.drop_index(name)
    try:
        coll.create_index(
            [(KEY_FIELD, 1)], name=f"{KEY_FIELD}_1", unique=True,
            partialFilterExpression={KEY_FIELD: {"$type": "string"}},
        )  # fmt: skip
    except (DuplicateKeyError, OperationFailure) as err:
        pipeline = [
            {"$match": {KEY_FIELD: {"$type": "string"}}},
            {"$group": {"_id": f"${KEY_FIELD}", "n": {"$sum": 1}}},
            {"$match": {"n": {"$gt": 1}}},
            {"$limit": 1},
        ]
        dup = next(iter(coll.aggregate(pipeline)), None)
        if dup is None:
            raise StoreError(f"cannot index {KEY_FIELD} of data set {ds.name!r}: {err}") from err
        raise StoreError(
            f"data set {ds.name!r} has {dup['n']} samples with {KEY_FIELD}={dup['_id']!r} (pushed at once "
            f"before keys were unique); delete all but one of each, e.g. in Python: "
            f"ds.delete_samples(ds.match(F('{KEY_FIELD}') == key).skip(1))"
        ) from err


class RawWriter:
    """Bulk writer of one data set's pushed samples (see the module docstring)."""

    def __init__(self, fo: Any, ds: Any, label_field: str) -> None:
        from bson import ObjectId

        self._oid = ObjectId
        self.fo = fo
        self.ds = ds
        self.label_field = label_field
        self.reviewed_field = label_field + REVIEWED_SUFFIX
        with dataset_lock(ds):
            ds.reload()
            if ds.media_type is None:
                ds.media_type = "image"
            elif ds.media_type != "image":
                raise StoreError(f"data set {ds.name!r} holds {ds.media_type} samples; push needs an image data set")
        self.coll = ds._sample_collection
        self.dataset_id = ds._doc.id
        self.declared = set(ds.get_field_schema(flat=True))
        if label_field in self.declared:
            found = ds.get_field(label_field)
            if getattr(found, "document_type", None) is not fo.Detections:
                raise StoreError(
                    f"field {label_field!r} of data set {ds.name!r} is not a Detections field; choose another "
                    "--label-field"
                )
        self.ensure_key_index()

    # -- schema ---------------------------------------------------------------------------------

    def ensure_key_index(self) -> None:
        """A unique index on ``cva_key`` (see :func:`ensure_key_index`)."""
        ensure_key_index(self.ds)

    def _field_spec(self, name: str, value: Any) -> tuple[Any, dict[str, Any]] | None:
        fo = self.fo
        if name == EMBEDDING_FIELD:
            return fo.VectorField, {}
        if name in (self.label_field, self.reviewed_field):
            return fo.EmbeddedDocumentField, {"embedded_doc_type": fo.Detections}
        if isinstance(value, list):
            return (fo.ListField, {"subfield": fo.StringField}) if all(isinstance(v, str) for v in value) else None
        if isinstance(value, dict):
            return fo.DictField, {}
        ftype = _FIELD_TYPES.get(type(value))
        return (getattr(fo, ftype), {}) if ftype else None

    def declare(self, values: dict[str, Any], dets: list[dict[str, Any]]) -> None:
        """Add the fields of one sample (and the attributes of its boxes) to the schema where new."""
        wanted: dict[str, Any] = {KEY_FIELD: "", WRITE_FIELD: "", self.label_field: None}
        wanted.update({k: v for k, v in values.items() if v is not None})
        for det in dets[:1]:
            for name, value in det.items():
                if name not in ("label", "bounding_box", "confidence"):
                    wanted[f"{self.label_field}.detections.{name}"] = value
        missing = [k for k in wanted if k not in self.declared]
        if not missing:
            return
        with dataset_lock(self.ds):
            self.ds.reload()  # another process may have declared some meanwhile
            self.declared = set(self.ds.get_field_schema(flat=True))
            for name in missing:
                spec = self._field_spec(name, wanted[name])
                if name in self.declared or spec is None:
                    continue
                ftype, kwargs = spec
                self.ds.add_sample_field(name, ftype, **kwargs)
                self.declared.update(self.ds.get_field_schema(flat=True))

    def declare_reviewed(self) -> None:
        """Declare ``<label_field>_reviewed`` (boxes a reviewer tagged that a re-push dropped)."""
        self.declare({self.reviewed_field: None}, [])
        if self.reviewed_field not in self.declared:
            with dataset_lock(self.ds):
                self.ds.reload()
                if not self.ds.has_sample_field(self.reviewed_field):
                    self.ds.add_sample_field(
                        self.reviewed_field, self.fo.EmbeddedDocumentField, embedded_doc_type=self.fo.Detections
                    )
                self.declared.update(self.ds.get_field_schema(flat=True))

    # -- documents ------------------------------------------------------------------------------

    def detections(self, dets: list[dict[str, Any]]) -> dict[str, Any]:
        """The ``Detections`` document of plain boxes (each gets a new label id unless it has one)."""
        out = []
        for d in dets:
            doc = {"_id": d.get("_id") or self._oid(), "_cls": "Detection", "attributes": {}, "tags": [], **d}
            doc["_id"] = doc["_id"] if not isinstance(doc["_id"], str) else self._oid(doc["_id"])
            out.append(doc)
        return {"_cls": "Detections", "detections": out}

    def plain(self, values: dict[str, Any]) -> dict[str, Any]:
        """Values as stored: embeddings serialised as FiftyOne stores a ``VectorField``."""
        out = dict(values)
        emb = out.get(EMBEDDING_FIELD)
        if isinstance(emb, np.ndarray):
            import fiftyone.core.utils as fou

            out[EMBEDDING_FIELD] = fou.serialize_numpy_array(emb)
        return out

    def new_doc(self, filepath: str, tags: list[str], metadata: dict[str, Any], values: dict[str, Any]) -> dict:
        """A new sample document (``values`` already hold the key and the predictions)."""
        from fiftyone.core.odm.sample import _generate_rand

        stamp = now()
        return {
            "_id": self._oid(),
            "filepath": filepath,
            "tags": list(tags),
            "metadata": metadata,
            "created_at": stamp,
            "last_modified_at": stamp,
            "_media_type": "image",
            "_rand": _generate_rand(),
            "_dataset_id": self.dataset_id,
            **self.plain(values),
        }

    def insert(self, docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Insert new samples; return key -> document of those another process inserted first."""
        from pymongo.errors import BulkWriteError

        if not docs:
            return {}
        try:
            self.coll.insert_many(docs, ordered=False)
        except BulkWriteError as err:
            errors = err.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise StoreError(f"writing samples to {self.ds.name!r} failed: {errors[:3]}") from err
            return {docs[e["index"]][KEY_FIELD]: docs[e["index"]] for e in errors}
        return {}

    def ids_of(self, keys: list[str]) -> dict[str, str]:
        """Sample id of each of ``keys`` present in the data set."""
        found = self.coll.find({KEY_FIELD: {"$in": keys}}, {KEY_FIELD: 1})
        return {d[KEY_FIELD]: str(d["_id"]) for d in found}

    # -- merging updates ------------------------------------------------------------------------

    def _read_boxes(self, ids: list[str]) -> dict[str, tuple[Any, list[dict], list[dict], list[str]]]:
        """Sample id -> (``last_modified_at``, its predicted boxes, its kept reviewed boxes, its tags)."""
        slim = {k: f"$$d.{k}" for k in _BOX_KEYS}
        pipeline = [
            {"$match": {"_id": {"$in": [self._oid(i) for i in ids]}}},
            {"$project": {
                "last_modified_at": 1,
                "boxes": {"$map": {"input": {"$ifNull": [f"${self.label_field}.detections", []]}, "as": "d",
                                   "in": slim}},
                "kept": {"$ifNull": [f"${self.reviewed_field}.detections", []]},
                "tags": 1,
            }},
        ]  # fmt: skip
        docs = self.coll.aggregate(pipeline)
        return {str(d["_id"]): (d.get("last_modified_at"), d["boxes"], d["kept"], d.get("tags") or []) for d in docs}

    def _update_op(
        self,
        sid: str,
        upd: Update,
        state: tuple[Any, list[dict], list[dict], list[str]],
        stamp: datetime,
        token: str,
    ) -> Any:
        from pymongo import UpdateOne

        modified, old_boxes, kept, old_tags = state
        # every old box lends its id (and tags) to the new box that matches it, so a label id the App
        # holds stays valid; reviewed boxes that nothing matches are kept aside
        dets, dropped = carry_reviews(old_boxes, [dict(d) for d in upd.dets])
        unmatched = [b for b in dropped if b.get("tags")]
        values = self.plain(upd.values)
        values[self.label_field] = self.detections(dets)
        if unmatched:
            self.declare_reviewed()
            full = {str(b["_id"]): b for b in self._full_boxes(sid, [b["_id"] for b in unmatched])}
            archive = keep_unmatched(kept, [full.get(str(b["_id"]), b) for b in unmatched])
            values[self.reviewed_field] = {"_cls": "Detections", "detections": archive}
        update: dict[str, Any] = {"$set": {**values, WRITE_FIELD: token, "last_modified_at": stamp}}
        tags = list(upd.tags)
        if FINISHED_TAGS & set(old_tags):  # a finished review is not queued again by a re-push
            tags = [t for t in tags if t != TO_REVIEW]
        if tags:
            update["$addToSet"] = {"tags": {"$each": tags}}
        return UpdateOne({"_id": self._oid(sid), "last_modified_at": modified}, update)

    def _full_boxes(self, sid: str, label_ids: list[Any]) -> list[dict[str, Any]]:
        doc = self.coll.find_one({"_id": self._oid(sid)}, {f"{self.label_field}.detections": 1}) or {}
        wanted = {str(i) for i in label_ids}
        boxes = ((doc.get(self.label_field) or {}).get("detections")) or []
        return [b for b in boxes if str(b.get("_id")) in wanted]

    def update(self, updates: dict[str, Update]) -> int:
        """Apply updates (sample id -> :class:`Update`) as compare-and-set writes; retry the samples
        someone changed meanwhile. Returns the number of retries.

        Raises:
            StoreError: a sample kept changing through :data:`MAX_RETRIES` attempts.
        """
        todo = dict(updates)
        retries = 0
        for _ in range(MAX_RETRIES):
            if not todo:
                return retries
            stamp, token = now(), uuid.uuid4().hex
            states = self._read_boxes(list(todo))
            ops = [self._update_op(sid, upd, states[sid], stamp, token) for sid, upd in todo.items() if sid in states]
            if not ops:
                return retries  # deleted meanwhile: nothing to update
            result = self.coll.bulk_write(ops, ordered=False)
            if result.matched_count == len(ops):
                return retries
            after = self.coll.find({"_id": {"$in": [self._oid(s) for s in todo]}}, {WRITE_FIELD: 1})
            done = {str(d["_id"]) for d in after if d.get(WRITE_FIELD) == token}
            todo = {sid: upd for sid, upd in todo.items() if sid in states and sid not in done}
            retries += len(todo)
            log.debug("%d samples changed during the update; merging again", len(todo))
        raise StoreError(
            f"{len(todo)} samples of {self.ds.name!r} kept changing during {MAX_RETRIES} update attempts; push again"
        )
