"""Detection and pool scoring: a model in, scored :class:`~cvactive.record.ImageRecord` objects out.

The modules depend one way, each only on those above it in this list (``tests/test_imports.py``
checks it, type-only imports included):

* :mod:`cvactive.detect.scorer`: :class:`~cvactive.detect.scorer.Scorer`, per-box measures and
  per-image aggregates on records (numpy only), and the check of a model's classes against a
  data set's.
* :mod:`cvactive.detect.results`: :func:`~cvactive.detect.results.records_from_results`, records
  from Ultralytics ``Results`` a user already has (duck-typed, no class-score rows).
* :mod:`cvactive.detect.model`: :class:`~cvactive.detect.model.Detector`, the Ultralytics
  adapter: preprocessing, the forward pass, NMS and raw rows to records (full class-score rows).
* :mod:`cvactive.detect.engines`: what runs a detector's forward pass for the pipeline (the
  :class:`~cvactive.detect.engines.Engine` protocol, batched PyTorch, OpenVINO async requests)
  and :func:`~cvactive.detect.engines.engine_for`, the engine a detector gets.
* :mod:`cvactive.detect.pipeline`: :class:`~cvactive.detect.pipeline.Pipeline` (decode,
  letterbox, infer and NMS at once, records in order), :func:`~cvactive.detect.pipeline.read_frames`
  and :func:`~cvactive.detect.pipeline.run_detector` (pipelined or not).
* :mod:`cvactive.detect.stage`: the score stage, :func:`~cvactive.detect.stage.score_source`
  (``cvactive score``: a source to a resumable JSON-lines pool file).

Importing this package imports nothing heavy; each module imports its libraries when used.
"""
