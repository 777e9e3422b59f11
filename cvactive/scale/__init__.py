"""Scale-out: pool scoring on Ray Data into sharded files with a manifest, resumable by shard.

    from cvactive.scale import DetectorSpec, RayOptions, score_sharded
    summary = score_sharded("images/", "scores/", DetectorSpec("yolov8n.pt"), ray=RayOptions(actors=4))

:func:`score_sharded` writes the records ``cvactive score`` writes, split into shards
(:mod:`cvactive.scale.shards`); :func:`cvactive.selection.columnar.open_pool` reads the shards'
image tables and embeddings back for selection without loading any box. Ray is imported only
when the Ray engine runs (``pip install 'cvactive[ray]'``).
"""

from cvactive.scale.engine import ENGINES, DetectorSpec, RayOptions, ShardedSummary, score_sharded
from cvactive.scale.plan import plan_shards
from cvactive.scale.shards import is_sharded, iter_records, load_manifest
from cvactive.sharded import Shard

__all__ = [
    "ENGINES",
    "DetectorSpec",
    "RayOptions",
    "Shard",
    "ShardedSummary",
    "is_sharded",
    "iter_records",
    "load_manifest",
    "plan_shards",
    "score_sharded",
]
