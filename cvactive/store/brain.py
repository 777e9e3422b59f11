"""FiftyOne Brain on the embeddings cvactive already computed: similarity search, a 2-D map, uniqueness.

Records scored with ``--embed`` carry an image embedding; push stores it on the sample
(``embedding``) and then runs, on the samples that have one:

* ``compute_similarity`` with the scikit-learn backend (brain key ``cva_similarity``): the App's
  "sort by similarity" on a selected sample finds its look-alikes;
* ``compute_visualization`` (brain key ``cva_map``): the embeddings map panel. UMAP when
  ``umap-learn`` is installed, else t-SNE (scikit-learn) up to :data:`TSNE_MAX` samples, else PCA;
* ``compute_uniqueness`` (field ``uniqueness``): a sortable score of how unlike the rest a sample is.

Every call is given the stored embeddings, so no model is loaded or downloaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cvactive.errors import StoreError
from cvactive.store._lock import dataset_lock
from cvactive.store.fields import EMBEDDING_FIELD

log = logging.getLogger(__name__)

SIMILARITY_KEY = "cva_similarity"
MAP_KEY = "cva_map"
UNIQUENESS_FIELD = "uniqueness"
#: Above this many samples the map uses PCA instead of t-SNE (t-SNE's cost grows as N log N with a large constant).
TSNE_MAX = 5000


@dataclass
class BrainSummary:
    """What the Brain runs covered: samples with embeddings, their dimension and the map's method."""

    samples: int = 0
    dims: int = 0
    map_method: str = ""


def map_method(n: int) -> str:
    """The 2-D map's method for ``n`` samples: ``umap`` if installed, else ``tsne`` (n <= TSNE_MAX), else ``pca``."""
    try:
        import umap  # noqa: F401

        return "umap" if n >= 5 else "pca"
    except ImportError:
        return "tsne" if 5 <= n <= TSNE_MAX else "pca"


def run_brain(dataset: Any, *, progress: bool = False) -> BrainSummary:
    """Similarity index, 2-D map and uniqueness of the samples of ``dataset`` that have an embedding.

    Fewer than 2 such samples: nothing to compare, nothing is run.

    Raises:
        StoreError: the embeddings differ in length.
    """
    import fiftyone.brain as fob

    view = dataset.exists(EMBEDDING_FIELD)
    n = len(view)
    if n < 2:
        return BrainSummary(samples=n)
    dims = {len(v) for v in view.values(EMBEDDING_FIELD)}
    if len(dims) != 1:
        raise StoreError(
            f"data set {dataset.name!r} holds embeddings of lengths {sorted(dims)}; push embeddings of one model "
            "per data set (or delete the field 'embedding')"
        )
    method = map_method(n)
    kwargs: dict[str, Any] = {}
    dim = dims.pop()
    if method == "tsne":
        kwargs["perplexity"] = float(min(30, max(2, (n - 1) // 3)))
        kwargs["verbose"] = progress
        kwargs["pca_dims"] = min(50, n, dim) if min(n, dim) > 50 else None  # its PCA step needs n, D > dims
    with dataset_lock(dataset, "brain", timeout_s=600, ttl_s=600):
        dataset.reload()
        for key in (SIMILARITY_KEY, MAP_KEY, UNIQUENESS_FIELD):  # recomputed over the grown pool
            if key in dataset.list_brain_runs():
                dataset.delete_brain_run(key)
        fob.compute_similarity(
            view, embeddings=EMBEDDING_FIELD, backend="sklearn", brain_key=SIMILARITY_KEY, progress=progress
        )
        fob.compute_visualization(
            view, embeddings=EMBEDDING_FIELD, method=method, brain_key=MAP_KEY, num_dims=2, seed=0,
            progress=progress, **kwargs,
        )  # fmt: skip
        fob.compute_uniqueness(view, embeddings=EMBEDDING_FIELD, uniqueness_field=UNIQUENESS_FIELD, progress=progress)
    log.info("brain: %d samples, %d-D embeddings, map by %s", n, dim, method)
    return BrainSummary(samples=n, dims=dim, map_method=method)
