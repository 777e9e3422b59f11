"""Data-set health: class balance, box statistics, label errors, image checks and CI gates.

``check_health(data, out=...)`` reads a YOLO data set, a FiftyOne data set or a harvest
output, measures it, applies the gates and writes ``report.json``, ``report.md`` and PNG
plots. ``cvactive health`` is its command line (exit 0: all gates pass, 1: a gate fails,
2: the input cannot be read).
"""

from cvactive.health.check import HealthReport, analyse, check_health
from cvactive.health.gates import GateResult
from cvactive.health.table import LabelTable, load_table, table_from_fiftyone, table_from_manifest, table_from_yolo

__all__ = [
    "GateResult",
    "HealthReport",
    "LabelTable",
    "analyse",
    "check_health",
    "load_table",
    "table_from_fiftyone",
    "table_from_manifest",
    "table_from_yolo",
]
