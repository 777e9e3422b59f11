"""Consistency and disagreement measures beyond class scores, and confidence calibration.

* :mod:`~cvactive.consistency.tta`: ``tta_localization``, ``tta_consistency`` (test-time augmentation);
* :mod:`~cvactive.consistency.committee`: ``committee_disagreement`` (query by committee);
* :mod:`~cvactive.consistency.mc_dropout`: ``mc_variance``, ``mc_bald`` (MC dropout, PyTorch models);
* :mod:`~cvactive.consistency.calibration`: ``calibrate`` (fit a temperature, D-ECE before/after, reliability
  diagram), on the maths of :mod:`~cvactive.consistency.temperature` and the detector run of
  :mod:`~cvactive.consistency.calibration_run`;
* :mod:`~cvactive.consistency.divergence`: JS divergence, BALD (boxes are paired by :mod:`cvactive.matching`);
* :class:`~cvactive.consistency.measured.MeasuredDetector`: a detector that adds them to its records.

Their names (``TTA_MEASURES``, ``COMMITTEE_MEASURES``, ``MC_MEASURES``, ``CONSISTENCY_MEASURES``) live
in :mod:`cvactive.measures` with every other measure name. Importing this package needs only numpy;
models load in the classes that use them.
"""
