"""Annotation in an annotation tool through FiftyOne's annotation API: send a batch, collect what is done.

:func:`annotate` sends a batch of samples (the review queue, the ``to-annotate`` queue that
``cvactive pull`` fills, a selection file or a harvest manifest) to an annotation backend with the
current model's boxes as pre-labels, through ``dataset.annotate(anno_key, backend=...)``. Each
send is one FiftyOne annotation run (key ``cva_<hash of its samples>``) and one Label Studio
project; every sample sent carries a record in the sample field ``cva_annotation`` (run key,
project, task, status ``pending``/``done``, who annotated it and when). A sample already sent is
not sent again, so sending a batch twice is one task set.

:func:`collect` reads each run's tasks from the backend and writes the latest submitted annotation
of every finished task into the ground-truth field (pixel-exact: Label Studio's percentages become
FiftyOne's normalised boxes); unfinished (or only skipped) tasks stay ``pending`` for the next
collect. Ground truth is written before the record that says it is done, so a collect killed
midway and run again gives the same state. Sample tags (reviewers' approvals, rejections) and
the prediction field are never touched; collect adds the tag ``labeled`` and removes ``to-annotate``.

The server's URL and token come from the arguments or the environment (``LABEL_STUDIO_URL``,
``LABEL_STUDIO_API_KEY``, or FiftyOne's ``FIFTYONE_LABELSTUDIO_URL`` / ``FIFTYONE_LABELSTUDIO_API_KEY``);
the token is never stored, printed or logged (FiftyOne keeps the URL in its run record).
FiftyOne's backend talks to Label Studio through the SDK's legacy ``Client``, which sends the
user's legacy API token: the organisation must allow legacy tokens (``label-studio start
--enable-legacy-api-token``, which ``./dev.sh labelstudio`` uses, or Organization > API Tokens
Settings in the UI).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from cvactive.errors import ConfigError, MissingDependencyError, StoreError
from cvactive.store._db import load_dataset, open_dataset
from cvactive.store._lock import dataset_lock
from cvactive.store.review import LABELED, TO_ANNOTATE
from cvactive.store.tags import KEY_FIELD, TO_REVIEW

log = logging.getLogger(__name__)

#: Annotation backends cvactive can drive (CVAT needs containers; it can be named here later).
BACKENDS = ("labelstudio",)
#: The sample field that records each sample's annotation: run key, project, task, status, who and when.
ANNO_FIELD = "cva_annotation"
#: Prefix of the annotation runs cvactive makes (others' runs on the data set are left alone).
RUN_PREFIX = "cva_"
#: Where each run's settings live in ``dataset.info``.
ANNO_INFO = "cvactive_annotation"
#: Named queues a batch may be: the tag whose samples it sends.
QUEUES = {"review-queue": TO_REVIEW, "to-annotate": TO_ANNOTATE}
PENDING, DONE = "pending", "done"
#: The Label Studio SDK release FiftyOne's backend was checked with (installed without its
#: dependencies: it pins opencv-python-headless<4.13, cvactive's cv2 is 4.14; see pyproject.toml).
SDK_VERSION = "2.1.2"
SDK_INSTALL = "pip install lxml PyJWT appdirs && pip install --no-deps label-studio-sdk==2.1.2"
ENV_URL = ("LABEL_STUDIO_URL", "FIFTYONE_LABELSTUDIO_URL")
ENV_KEY = ("LABEL_STUDIO_API_KEY", "FIFTYONE_LABELSTUDIO_API_KEY")


@dataclass
class AnnotateSummary:
    """What :func:`annotate` did.

    Attributes:
        dataset: the data set name.
        anno_key: the annotation run of this send (``""`` when nothing was sent).
        project: the backend's project id (``None`` when nothing was sent).
        batch: samples in the batch.
        sent: samples sent now (one task each).
        already_sent: samples of the batch that an earlier send already covers (not sent again).
        prelabels: pre-label boxes sent (predictions at or above ``min_conf``).
        classes: the label choices of the project.
        missing: keys of a batch file's records with no sample (their image was missing at push).
    """

    dataset: str
    anno_key: str = ""
    project: int | None = None
    batch: int = 0
    sent: int = 0
    already_sent: int = 0
    prelabels: int = 0
    classes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass
class CollectSummary:
    """What :func:`collect` did.

    Attributes:
        dataset: the data set name.
        runs: the annotation runs read.
        collected: samples whose ground truth was written now (first time or updated).
        updated: of those, samples collected before whose annotation changed since.
        unchanged: finished samples already collected as they are.
        pending: samples whose task has no submitted annotation yet (left for the next collect).
        skipped: of those, tasks an annotator skipped (cancelled annotations only).
        missing_tasks: tasks deleted in the backend (their samples stay pending).
        boxes: ground-truth boxes written.
        kept: pre-labels submitted unchanged; ``edited``: moved, resized or relabelled;
            ``deleted``: removed by the annotator; ``added``: boxes drawn by the annotator.
        rotated: rotated rectangles written as their axis-aligned hull.
        annotators: annotator -> samples collected now.
    """

    dataset: str
    runs: list[str] = field(default_factory=list)
    collected: int = 0
    updated: int = 0
    unchanged: int = 0
    pending: int = 0
    skipped: int = 0
    missing_tasks: int = 0
    boxes: int = 0
    kept: int = 0
    edited: int = 0
    deleted: int = 0
    added: int = 0
    rotated: int = 0
    annotators: dict[str, int] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def credentials(url: str | None = None, api_key: str | None = None) -> tuple[str, str]:
    """The backend's URL and token: the arguments, else ``LABEL_STUDIO_URL``/``LABEL_STUDIO_API_KEY``,
    else FiftyOne's ``FIFTYONE_LABELSTUDIO_URL``/``FIFTYONE_LABELSTUDIO_API_KEY``.

    Raises:
        ConfigError: either is missing.
    """
    url = url or next((os.environ[k] for k in ENV_URL if os.environ.get(k)), None)
    api_key = api_key or next((os.environ[k] for k in ENV_KEY if os.environ.get(k)), None)
    if not url or not api_key:
        missing = " and ".join(n for n, v in ((ENV_URL[0], url), (ENV_KEY[0], api_key)) if not v)
        raise ConfigError(
            f"no Label Studio server: set {missing} (./dev.sh labelstudio starts one on this machine; "
            "docs/annotate.md says how to point at an existing one)"
        )
    return url.rstrip("/"), api_key


def redact_url(url: str) -> str:
    """The URL without a password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"unknown annotation backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    try:
        installed = metadata.version("label-studio-sdk")
    except metadata.PackageNotFoundError as err:
        raise MissingDependencyError(
            f"the Label Studio backend needs label-studio-sdk=={SDK_VERSION}: {SDK_INSTALL}"
        ) from err
    if installed != SDK_VERSION:
        log.warning("label-studio-sdk %s is installed; FiftyOne's backend was checked with %s", installed, SDK_VERSION)


class LabelStudio:
    """The few Label Studio HTTP calls collect needs (tasks with annotations, users), with the legacy token.

    Errors name the URL and the status, never the token.
    """

    def __init__(self, url: str, api_key: str, timeout_s: float = 60.0) -> None:
        self.url, self._key, self.timeout_s = url.rstrip("/"), api_key, timeout_s

    def request(self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        """The JSON answer of ``method path``.

        Raises:
            StoreError: the server cannot be reached or answers with an error.
        """
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}{path}{query}", data=data, method=method)
        req.add_header("Authorization", f"Token {self._key}")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            detail = err.read()[:300].decode("utf-8", "replace")
            hint = ""
            if err.code == 401:
                hint = (
                    "; the token was refused: check LABEL_STUDIO_API_KEY, and that the organisation allows "
                    "legacy API tokens (Organization > API Tokens Settings, or label-studio start "
                    "--enable-legacy-api-token)"
                )
            raise StoreError(
                f"Label Studio at {redact_url(self.url)}: {method} {path} -> {err.code} {detail}{hint}"
            ) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise StoreError(
                f"cannot reach Label Studio at {redact_url(self.url)} ({reason}); is it running?"
            ) from None
        return json.loads(raw) if raw else None

    def version(self) -> str:
        return str(self.request("GET", "/api/version").get("release", "?"))

    def tasks(self, project: int, page_size: int = 100) -> dict[int, dict[str, Any]]:
        """Every task of ``project`` with its annotations and predictions, by task id."""
        out: dict[int, dict[str, Any]] = {}
        page = 1
        while True:
            answer = self.request(
                "GET", "/api/tasks", {"project": project, "fields": "all", "page": page, "page_size": page_size}
            )
            tasks = answer["tasks"] if isinstance(answer, dict) else answer
            for task in tasks:
                out[int(task["id"])] = task
            total = answer.get("total", len(out)) if isinstance(answer, dict) else len(out)
            if not tasks or len(out) >= total:
                return out
            page += 1

    def users(self) -> dict[int, str]:
        """User id -> e-mail (or name)."""
        return {
            int(u["id"]): u.get("email") or u.get("username") or str(u["id"]) for u in self.request("GET", "/api/users")
        }


def _batch_ids(ds: Any, batch: str | Path | Sequence[str], summary: AnnotateSummary, push: dict[str, Any]) -> list[str]:
    """The sample ids of a batch: a named queue, a JSON-lines file of records (pushed first), or sample ids."""
    if isinstance(batch, str) and batch in QUEUES:
        return [str(i) for i in ds.match_tags(QUEUES[batch]).values("id")]
    if isinstance(batch, (str, Path)):
        path = Path(batch)
        if not path.is_file():
            raise ConfigError(
                f"batch {str(batch)!r} is neither a queue ({', '.join(QUEUES)}) nor an existing records file"
            )
        return _pushed_ids(ds, path, summary, push)
    ids = [str(i) for i in batch]
    known = set(ds.select(ids).values("id")) if ids else set()
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise StoreError(f"{len(unknown)} sample id(s) not in data set {ds.name!r}: {', '.join(unknown[:5])}")
    return ids


def _pushed_ids(ds: Any, path: Path, summary: AnnotateSummary, push: dict[str, Any]) -> list[str]:
    """Push a selection file or harvest manifest (an idempotent upsert), then its samples' ids."""
    from cvactive.io import read_jsonl
    from cvactive.store.push import push_file
    from cvactive.store.resolve import sample_key

    keys: list[str] = []
    names: dict[int, str] = {}
    for record in read_jsonl(path):
        keys.append(sample_key(record, [path.parent.resolve()]))
        names.update(record.names or {})
    summary.classes = [str(names[i]) for i in sorted(names)]  # the classes the records name, by class id
    options = {"progress": False, **push}
    push_file(path, ds.name, **options)
    ds.reload()
    from fiftyone import ViewField as F

    by_key = dict(zip(*ds.match(F(KEY_FIELD).is_in(keys)).values([KEY_FIELD, "id"])))
    summary.missing = [k for k in keys if k not in by_key]
    return list(dict.fromkeys(str(by_key[k]) for k in keys if k in by_key))


def _classes(ds: Any, fields: Iterable[str], classes: Sequence[str] | None, model: list[str]) -> list[str]:
    """The labels to choose from: given, else the data set's class list, else those a batch file's records
    name (JSON lines keep only the classes of their boxes), else the labels the fields hold."""
    if classes:
        return list(dict.fromkeys(str(c) for c in classes))
    if ds.default_classes:
        return list(ds.default_classes)
    if model:
        return model
    found: list[str] = []
    for name in fields:
        if name and ds.has_sample_field(name):
            found += [c for c in ds.distinct(f"{name}.detections.label") if c not in found]
    if not found:
        raise ConfigError(f"data set {ds.name!r} has no class list: pass classes (the labels annotators may choose)")
    return found


def _sent(ds: Any) -> dict[str, dict[str, Any]]:
    """Sample id -> its annotation record, for every sample ever sent."""
    if not ds.has_sample_field(ANNO_FIELD):
        return {}
    view = ds.exists(ANNO_FIELD)
    return {str(i): dict(r) for i, r in zip(*view.values(["id", ANNO_FIELD]))}


def _runs(ds: Any) -> list[str]:
    return [k for k in ds.list_annotation_runs() if k.startswith(RUN_PREFIX)]


def _reconcile(ds: Any, url: str, api_key: str) -> None:
    """Give samples of a saved run that have no record (a send killed after FiftyOne saved the run) theirs."""
    sent = _sent(ds)
    for key in _runs(ds):
        results = ds.load_annotation_results(key, url=url, api_key=api_key)
        lost = {sid: task for task, sid in results.uploaded_tasks.items() if sid not in sent}
        if lost:
            info = ds.get_annotation_info(key)
            sent_at = info.timestamp.replace(tzinfo=timezone.utc).isoformat(timespec="seconds")
            _write_records(ds, key, int(results.project_id), lost, sent_at)


def _write_records(ds: Any, key: str, project: int, tasks: dict[str, int], sent_at: str) -> None:
    values = {
        sid: {"key": key, "backend": "labelstudio", "project": project, "task": int(task), "status": PENDING,
              "sent_at": sent_at}
        for sid, task in tasks.items()
    }  # fmt: skip
    ds.set_values(ANNO_FIELD, values, key_field="id")


def annotate(
    dataset: str,
    batch: str | Path | Sequence[str],
    *,
    backend: str = "labelstudio",
    url: str | None = None,
    api_key: str | None = None,
    label_field: str = "ground_truth",
    prelabel_field: str | None = "predictions",
    min_conf: float | None = None,
    classes: Sequence[str] | None = None,
    resend: bool = False,
    push: dict[str, Any] | None = None,
) -> AnnotateSummary:
    """Send a batch of samples to the annotation backend, the model's boxes as pre-labels.

    Args:
        dataset: the FiftyOne data set.
        batch: ``"review-queue"`` (samples tagged ``to-review``), ``"to-annotate"`` (queued by
            ``cvactive pull``), a selection file / harvest manifest / scores file (its records are
            pushed first, an idempotent upsert), or a list of sample ids.
        backend: the annotation backend (``labelstudio``).
        url, api_key: the server and the user's legacy API token (default: the environment; the token
            is never stored or logged).
        label_field: where :func:`collect` writes the annotations (ground truth).
        prelabel_field: the predictions shown as pre-labels; ``None`` (or a field the data set lacks)
            starts from ``label_field`` where samples have it, else from empty images.
        min_conf: pre-labels below this confidence are left out (default: the review queue's
            display confidence, the boxes reviewers see; 0 keeps all).
        classes: the labels annotators may choose (default: the data set's class list, else the
            labels of the two fields).
        resend: send samples again that an earlier run covers (pending or done).
        push: options for :func:`~cvactive.store.push.push_file` when ``batch`` is a file.

    Returns:
        An :class:`AnnotateSummary`; ``sent == 0`` when every sample of the batch was sent before.

    Raises:
        ConfigError: unknown backend or batch, no server configured, no classes.
        StoreError: the data set is missing, or the server cannot be reached or refuses the token.
        MissingDependencyError: label-studio-sdk is not installed.
    """
    _check_backend(backend)
    url, api_key = credentials(url, api_key)
    if min_conf is not None and not 0 <= min_conf <= 1:
        raise ConfigError(f"min_conf must lie in [0, 1], got {min_conf}")
    LabelStudio(url, api_key).request("GET", "/api/projects", {"page_size": 1})  # reachable, token accepted
    is_file = isinstance(batch, Path) or (isinstance(batch, str) and batch not in QUEUES)
    ds = open_dataset(dataset, create=is_file)  # a records file is pushed into a new data set
    summary = AnnotateSummary(dataset=ds.name)
    with dataset_lock(ds, "annotate", timeout_s=120, ttl_s=900):
        ds.reload()
        _reconcile(ds, url, api_key)
        ids = _batch_ids(ds, batch, summary, dict(push or {}))
        summary.batch = len(ids)
        sent = _sent(ds)
        todo = [i for i in ids if resend or i not in sent]
        summary.already_sent = len(ids) - len(todo)
        field_name = prelabel_field if prelabel_field and ds.has_sample_field(prelabel_field) else label_field
        summary.classes = _classes(ds, (field_name, label_field), classes, summary.classes)
        if not todo:
            return summary
        key = RUN_PREFIX + hashlib.sha1(",".join(sorted(todo)).encode()).hexdigest()[:12]
        if key in ds.list_annotation_runs():  # sent earlier by a run whose records _reconcile restored
            summary.already_sent += len(todo)
            return summary
        view, summary.prelabels = _prelabel_view(ds, todo, field_name, prelabel_field, min_conf)
        results = _upload(view, key, field_name, summary.classes, url, api_key)
        summary.anno_key, summary.project, summary.sent = key, int(results.project_id), len(results.uploaded_tasks)
        ds.reload()
        tasks = {sid: int(task) for task, sid in results.uploaded_tasks.items()}
        _write_records(ds, key, summary.project, tasks, _now())
        _save_info(ds, key, {"label_field": label_field, "field": field_name, "project": summary.project,
                             "classes": summary.classes, "min_conf": _min_conf(ds, field_name, min_conf)})  # fmt: skip
    log.info("sent %d samples to Label Studio project %s (run %s)", summary.sent, summary.project, key)
    return summary


def _min_conf(ds: Any, field_name: str, min_conf: float | None) -> float:
    if min_conf is not None:
        return float(min_conf)
    from cvactive.store.queue import DISPLAY_CONF, review_settings

    settings = review_settings(ds)
    if settings.get("label_field", "predictions") != field_name:
        return 0.0
    return float(settings.get("display_conf", DISPLAY_CONF))


def _prelabel_view(
    ds: Any, ids: list[str], field_name: str, prelabel_field: str | None, min_conf: float | None
) -> tuple[Any, int]:
    """The samples to send, pre-labels below the confidence hidden, a missing label list made empty."""
    from fiftyone import ViewField as F

    view = ds.select(ids, ordered=True)
    if not ds.has_sample_field(field_name):
        return view, 0
    conf = _min_conf(ds, field_name, min_conf) if field_name == prelabel_field else 0.0
    if conf > 0:
        view = view.filter_labels(field_name, F("confidence") >= conf, only_matches=False)
    if len(view.exists(field_name, False)):  # FiftyOne would send a None label as a broken prediction
        empty = {"_cls": "Detections", "detections": []}
        view = view.set_field(field_name, (F(field_name) != None).if_else(F(field_name), empty))  # noqa: E711
    return view, int(view.count(f"{field_name}.detections"))


def _upload(view: Any, key: str, field_name: str, classes: list[str], url: str, api_key: str) -> Any:
    """``view.annotate(...)`` with the Label Studio backend; its errors as one :class:`StoreError`."""
    try:
        return view.annotate(
            key, backend="labelstudio", label_field=field_name, label_type="detections", classes=classes,
            attributes=False, url=url, api_key=api_key, project_name=f"{view._root_dataset.name} {key}",
        )  # fmt: skip
    except Exception as err:  # the SDK's and requests' errors; the token is not in their text
        text = str(err).replace(api_key, "***")[:300]
        raise StoreError(f"sending to Label Studio at {redact_url(url)} failed: {type(err).__name__}: {text}") from err


def _save_info(ds: Any, key: str, values: dict[str, Any]) -> None:
    with dataset_lock(ds):
        ds.reload()
        runs = dict(ds.info.get(ANNO_INFO) or {})
        runs[key] = values
        ds.info[ANNO_INFO] = runs
        ds.save()


def _box(value: dict[str, Any], width: float, height: float) -> tuple[list[float], bool]:
    """Label Studio's rectangle (percent, top-left, rotated clockwise by ``rotation`` degrees about
    its top-left corner) as FiftyOne's normalised ``[x, y, w, h]``; rotated ones become their hull."""
    x, y, w, h = (float(value[k]) / 100 for k in ("x", "y", "width", "height"))
    angle = float(value.get("rotation") or 0) % 360
    if angle == 0:
        return [x, y, w, h], False
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    px, py, pw, ph = x * width, y * height, w * width, h * height
    xs = [px + dx * c - dy * s for dx, dy in ((0, 0), (pw, 0), (pw, ph), (0, ph))]
    ys = [py + dx * s + dy * c for dx, dy in ((0, 0), (pw, 0), (pw, ph), (0, ph))]
    x0, x1 = max(min(xs), 0.0) / width, min(max(xs), width) / width
    y0, y1 = max(min(ys), 0.0) / height, min(max(ys), height) / height
    return [x0, y0, x1 - x0, y1 - y0], True


def _same_box(a: dict[str, Any], b: dict[str, Any]) -> bool:
    va, vb = a.get("value", {}), b.get("value", {})
    same = all(abs(float(va.get(k, 0)) - float(vb.get(k, 0))) < 1e-6 for k in ("x", "y", "width", "height", "rotation"))
    return same and va.get("rectanglelabels") == vb.get("rectanglelabels")


@dataclass
class _Task:
    """One finished task, converted: ground-truth boxes and the record that says who and when."""

    detections: list[Any]
    record: dict[str, Any]


def _convert(
    fo: Any, task: dict[str, Any], annotation: dict[str, Any], ctx: dict[str, Any], s: CollectSummary
) -> _Task:
    field_name = ctx["field"]
    preds = [p for p in task.get("predictions") or [] if p.get("result") is not None]
    prelabels = {r["id"]: r for r in (preds[-1]["result"] if preds else []) if r.get("from_name") == field_name}
    width, height = ctx["size"]
    dets, kept, edited, added, seen = [], 0, 0, 0, set()
    for item in annotation.get("result") or []:
        if item.get("type") != "rectanglelabels" or item.get("from_name") != field_name:
            continue
        value = item["value"]
        box, rotated = _box(
            value, float(item.get("original_width") or width), float(item.get("original_height") or height)
        )
        s.rotated += rotated
        attrs: dict[str, Any] = {}
        rid = item.get("id")
        if rid in prelabels:
            seen.add(rid)
            attrs["prelabel_id"] = rid
            if _same_box(item, prelabels[rid]):
                kept += 1
            else:
                edited += 1
        else:
            added += 1
        dets.append(fo.Detection(label=str(value["rectanglelabels"][0]), bounding_box=box, **attrs))
    deleted = len(set(prelabels) - seen)
    s.kept, s.edited, s.added, s.deleted = s.kept + kept, s.edited + edited, s.added + added, s.deleted + deleted
    record = {
        **ctx["record"], "status": DONE, "annotation": int(annotation["id"]),
        "annotator": ctx["users"].get(int(annotation.get("completed_by") or 0), str(annotation.get("completed_by"))),
        "annotated_at": annotation.get("updated_at") or annotation.get("created_at"), "collected_at": _now(),
        "boxes": len(dets), "kept": kept, "edited": edited, "deleted": deleted, "added": added,
    }  # fmt: skip
    return _Task(dets, record)


def collect(
    dataset: str,
    *,
    anno_key: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
) -> CollectSummary:
    """Write the finished annotations of the data set's annotation runs into its ground truth.

    For each run (or only ``anno_key``) that has samples not yet collected or may have changed,
    the backend's tasks are read; a task with a submitted (not skipped) annotation is finished and
    its latest annotation replaces the sample's ground truth (an empty annotation: no objects);
    other tasks stay pending. A sample collected before is written again only when its latest
    annotation changed. Each ground-truth box keeps the id of the pre-label it came from in
    ``prelabel_id``.

    Raises:
        ConfigError: no server configured, or ``anno_key`` is not one of cvactive's runs.
        StoreError: the data set is missing, or the server cannot be reached or refuses the token.
    """
    url, api_key = credentials(url, api_key)
    client = LabelStudio(url, api_key)
    users = client.users()  # reachable, token accepted: before the database
    ds = load_dataset(dataset)
    runs = _runs(ds)
    if anno_key is not None and anno_key not in runs:
        raise ConfigError(
            f"data set {ds.name!r} has no annotation run {anno_key!r}; its runs: {', '.join(runs) or 'none'}"
        )
    summary = CollectSummary(dataset=ds.name, runs=[anno_key] if anno_key else runs)
    if not summary.runs:
        return summary
    with dataset_lock(ds, "annotate", timeout_s=120, ttl_s=900):
        ds.reload()
        _reconcile(ds, url, api_key)
        for key in summary.runs:
            _collect_run(ds, key, client, users, summary)
    return summary


def _collect_run(ds: Any, key: str, client: LabelStudio, users: dict[int, str], summary: CollectSummary) -> None:
    import fiftyone as fo

    info = dict((ds.info.get(ANNO_INFO) or {}).get(key) or {})
    results = ds.load_annotation_results(key, url=client.url, api_key=client._key)
    field_name = info.get("field") or next(iter(results.config.label_schema))
    label_field = info.get("label_field", "ground_truth")
    sent = _sent(ds)
    mine = {sid: int(task) for task, sid in results.uploaded_tasks.items() if sent.get(sid, {}).get("key") == key}
    if not mine:
        return
    tasks = client.tasks(int(results.project_id))
    view = ds.select(list(mine))
    sizes = {str(i): (m.width, m.height) if m is not None else (0, 0) for i, m in zip(*view.values(["id", "metadata"]))}
    gt: dict[str, Any] = {}
    records: dict[str, dict[str, Any]] = {}
    for sid, task_id in mine.items():
        task = tasks.get(task_id)
        if task is None:
            summary.missing_tasks += 1
            summary.pending += sent[sid].get("status") != DONE
            continue
        submitted = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not submitted:
            summary.pending += 1
            summary.skipped += bool(task.get("annotations"))
            continue
        latest = max(submitted, key=lambda a: (a.get("updated_at") or "", a["id"]))
        before = sent[sid]
        stamp = latest.get("updated_at") or latest.get("created_at")
        if (
            before.get("status") == DONE
            and before.get("annotation") == latest["id"]
            and before.get("annotated_at") == stamp
        ):
            summary.unchanged += 1
            continue
        record = {k: before[k] for k in ("key", "backend", "project", "task", "sent_at") if k in before}
        ctx = {"field": field_name, "size": sizes.get(sid, (0, 0)), "users": users, "record": record}
        converted = _convert(fo, task, latest, ctx, summary)
        gt[sid] = fo.Detections(detections=converted.detections)
        records[sid] = converted.record
        summary.collected += 1
        summary.updated += before.get("status") == DONE
        summary.boxes += len(converted.detections)
        who = converted.record["annotator"]
        summary.annotators[who] = summary.annotators.get(who, 0) + 1
    if not gt:
        return
    ds.set_values(label_field, gt, key_field="id")  # ground truth first: a killed collect redoes these samples
    ds.set_values(ANNO_FIELD, {**{s: sent[s] for s in sent if s in records}, **records}, key_field="id")
    done = ds.select(sorted(records))
    done.tag_samples(LABELED)
    done.untag_samples(TO_ANNOTATE)
    classes = info.get("classes")
    if classes and not ds.default_classes:
        with dataset_lock(ds):
            ds.reload()
            if not ds.default_classes:
                ds.default_classes = list(classes)
                ds.save()
