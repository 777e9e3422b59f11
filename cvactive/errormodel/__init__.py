"""Learning where the detector is wrong: an error predictor for detections.

From a labeled split, each kept prediction is judged (:mod:`.labels`: correct, wrong class,
poorly localised, false positive) and each missed object found; small scikit-learn models
(:mod:`.model`) learn, from features cvactive already computes (:mod:`.features`), the
probability that a box is wrong, that a sub-threshold box hides a missed object, and how many
misses an image has beyond those. :func:`fit_error_model` fits them with cross-validation
(:mod:`.evaluate`); :meth:`ErrorModel.attach` gives pool records their expected errors, which
the ``learned_error`` selection strategy ranks by.
"""

from cvactive.errormodel.evaluate import evaluate_error_model, fit_error_model
from cvactive.errormodel.features import FeatureSpec
from cvactive.errormodel.labels import OUTCOMES, Matching, cover_misses, label_predictions
from cvactive.errormodel.model import (
    BOX_ERRORS,
    BOX_SCORE,
    MISSES,
    OBJECTS,
    TOTAL,
    ErrorModel,
    LabeledRecord,
    default_path,
)

__all__ = [
    "BOX_ERRORS",
    "BOX_SCORE",
    "MISSES",
    "OBJECTS",
    "OUTCOMES",
    "TOTAL",
    "ErrorModel",
    "FeatureSpec",
    "LabeledRecord",
    "Matching",
    "cover_misses",
    "default_path",
    "evaluate_error_model",
    "fit_error_model",
    "label_predictions",
]
