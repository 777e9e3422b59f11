"""Annotation in an annotation tool through FiftyOne's annotation API: send a batch, collect what is done.

:func:`annotate` sends a batch of samples (the review queue, the ``to-annotate`` queue that
``cvactive pull`` fills, a selection file or a harvest manifest) to an annotation backend with the
current model's boxes as pre-labels, through ``dataset.annotate(anno_key, backend=...)``. Each
send is one FiftyOne annotation run (key ``cva_<hash of its samples>``) and one Label Studio
project; every sample sent carries a record in the sample field ``cva_annotation`` (run key,
project, task, status ``pending``/``done``, who annotated it and when). A sample already sent is
not sent again, so sending a batch twice is one task set.

:func:`cvactive.store.collect.collect` reads each run's tasks from the backend and writes the latest
submitted annotation of every finished task into the ground-truth field (pixel-exact: Label Studio's percentages become
FiftyOne's normalised boxes); unfinished (or only skipped) tasks stay ``pending`` for the next
collect. Ground truth is written before the record that says it is done, so a collect killed
midway and run again gives the same state. Sample tags (reviewers' approvals, rejections) and
the prediction field are never touched; collect adds the tag ``labeled`` and removes ``to-annotate``.

The server's URL and token come from the arguments or the environment (``LABEL_STUDIO_URL``,
``LABEL_STUDIO_API_KEY``, or FiftyOne's ``FIFTYONE_LABELSTUDIO_URL`` / ``FIFTYONE_LABELSTUDIO_API_KEY``);
the token is never stored, printed or logged (FiftyOne keeps the URL in its run record; see
:mod:`cvactive.store.labelstudio_client`).
FiftyOne's backend talks to Label Studio through the SDK's legacy ``Client``, which sends the
user's legacy API token: the organisation must allow legacy tokens (``label-studio start
--enable-legacy-api-token``, which ``./dev.sh labelstudio`` uses, or Organization > API Tokens
Settings in the UI).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from cvactive.errors import ConfigError, MissingDependencyError, StoreError
from cvactive.store._db import open_dataset
from cvactive.store._lock import dataset_lock
from cvactive.store.labelstudio_client import LabelStudio, credentials, redact_url
from cvactive.store.review import TO_ANNOTATE
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


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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


def sent_records(ds: Any) -> dict[str, dict[str, Any]]:
    """Sample id -> its annotation record, for every sample ever sent."""
    if not ds.has_sample_field(ANNO_FIELD):
        return {}
    view = ds.exists(ANNO_FIELD)
    return {str(i): dict(r) for i, r in zip(*view.values(["id", ANNO_FIELD]))}


def cva_runs(ds: Any) -> list[str]:
    return [k for k in ds.list_annotation_runs() if k.startswith(RUN_PREFIX)]


def reconcile(ds: Any, url: str, api_key: str) -> None:
    """Give samples of a saved run that have no record (a send killed after FiftyOne saved the run) theirs."""
    sent = sent_records(ds)
    for key in cva_runs(ds):
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
        label_field: where :func:`cvactive.store.collect.collect` writes the annotations (ground truth).
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
        reconcile(ds, url, api_key)
        ids = _batch_ids(ds, batch, summary, dict(push or {}))
        summary.batch = len(ids)
        sent = sent_records(ds)
        todo = [i for i in ids if resend or i not in sent]
        summary.already_sent = len(ids) - len(todo)
        field_name = prelabel_field if prelabel_field and ds.has_sample_field(prelabel_field) else label_field
        summary.classes = _classes(ds, (field_name, label_field), classes, summary.classes)
        if not todo:
            return summary
        key = RUN_PREFIX + hashlib.sha1(",".join(sorted(todo)).encode()).hexdigest()[:12]
        if key in ds.list_annotation_runs():  # sent earlier by a run whose records reconcile restored
            summary.already_sent += len(todo)
            return summary
        view, summary.prelabels = _prelabel_view(ds, todo, field_name, prelabel_field, min_conf)
        results = _upload(view, key, field_name, summary.classes, url, api_key)
        summary.anno_key, summary.project, summary.sent = key, int(results.project_id), len(results.uploaded_tasks)
        ds.reload()
        tasks = {sid: int(task) for task, sid in results.uploaded_tasks.items()}
        _write_records(ds, key, summary.project, tasks, now_utc())
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
