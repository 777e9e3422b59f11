"""The pipeline's ordering, back-pressure, errors and shutdown, with a small asynchronous engine.

The engine here is a toy (no model): it finishes requests on its own threads after random
delays, so completions arrive out of order the way OpenVINO's callbacks do. The real engines
are checked against the sequential path in tests/test_pipeline_models.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from cvactive.detect.pipeline import Pipeline, default_workers
from cvactive.detect.scorer import Scorer
from cvactive.errors import ModelError, SourceError
from cvactive.record import ImageRecord
from cvactive.sources import FrameMeta


class ToyEngine:
    """Mean brightness as the 'output'; each request ends after a random delay on its own thread."""

    def __init__(
        self, batch: int = 1, depth: int = 3, seed: int = 0, fail_at: int | None = None, inline: bool = False
    ) -> None:
        self.batch, self.depth, self.fail_at, self.prepare_inline = batch, depth, fail_at, inline
        self.rng = np.random.default_rng(seed)
        self.slots = threading.Semaphore(depth)
        self.threads: list[threading.Thread] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()

    def prepare(self, images: Sequence[np.ndarray]) -> list[float]:
        time.sleep(float(self.rng.uniform(0, 0.002)))
        means = [float(i.mean()) for i in images]
        if self.fail_at is not None and self.fail_at in means:
            raise ValueError(f"cannot prepare image {self.fail_at}")
        return means

    def submit(self, prepared: list[float], done) -> None:
        self.slots.acquire()
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        delay = float(self.rng.uniform(0, 0.004))

        def run() -> None:
            time.sleep(delay)
            with self.lock:
                self.in_flight -= 1
            self.slots.release()
            done(prepared, None)

        thread = threading.Thread(target=run)
        self.threads.append(thread)
        thread.start()

    def drain(self) -> None:
        for thread in list(self.threads):
            thread.join()

    def finish(self, output, shapes, metas) -> list[ImageRecord]:
        out = []
        for value, (h, w), meta in zip(output, shapes, metas):
            # One box whose confidence encodes the image, so the order can be checked.
            box = np.array([[0, 0, w - 1, h - 1]], np.float32)
            scores = np.array([[value / 255, 1 - value / 255]], np.float32)
            out.append(
                ImageRecord(
                    source=meta.source,
                    frame=meta.frame,
                    width=w,
                    height=h,
                    xyxy=box,
                    confidence=scores.max(1),
                    class_id=scores.argmax(1),
                    class_scores=scores,
                    names={0: "a", 1: "b"},
                )
            )
        return out


def frames(n: int, fail_after: int | None = None):
    for i in range(n):
        if fail_after is not None and i == fail_after:
            raise SourceError(f"frame {i}: unreadable")
        yield np.full((8 + i % 3, 10, 3), i % 250, np.uint8), FrameMeta("clip.mp4", frame=i)


def pipeline_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("cvactive-")]


@pytest.mark.parametrize(
    ("batch", "workers", "inline"),
    [(1, 1, False), (1, 3, False), (4, 2, False), (7, 4, False), (1, 2, True), (3, 1, True)],
)
def test_records_come_back_in_input_order(batch, workers, inline):
    engine = ToyEngine(batch=batch, depth=3, inline=inline)
    records = list(Pipeline(engine, workers=workers)(frames(120)))
    assert [r.frame for r in records] == list(range(120))
    assert [r.height for r in records] == [8 + i % 3 for i in range(120)]
    np.testing.assert_allclose([r.confidence[0] for r in records], [max(i / 255, 1 - i / 255) for i in range(120)])
    assert engine.most_in_flight > 1  # requests really overlapped
    assert not pipeline_threads()


def test_scorer_runs_on_the_workers_and_matches_scoring_afterwards():
    scorer = Scorer()
    records = list(Pipeline(ToyEngine(), workers=2, scorer=scorer)(frames(20)))
    plain = list(Pipeline(ToyEngine(), workers=2)(frames(20)))
    for scored, bare in zip(records, plain):
        assert scored.image_scores == scorer(bare).image_scores
        assert scored.image_scores  # every aggregation is there


def test_a_reader_error_is_raised_in_order_after_earlier_records():
    got = []
    with pytest.raises(SourceError, match="frame 37"):
        for record in Pipeline(ToyEngine(), workers=2)(frames(100, fail_after=37)):
            got.append(record.frame)
    assert got == list(range(37))
    assert not pipeline_threads()


@pytest.mark.parametrize("inline", [False, True])
def test_an_engine_error_is_raised_at_its_chunk(inline):
    got = []
    with pytest.raises(ValueError, match="cannot prepare image 5"):
        for record in Pipeline(ToyEngine(fail_at=5, inline=inline), workers=2)(frames(50)):
            got.append(record.frame)
    assert got == list(range(5))
    assert not pipeline_threads()


def test_stopping_early_stops_the_threads_and_reads_little_ahead():
    pulled = []

    def counted():
        for item in frames(10_000):
            pulled.append(item[1].frame)
            yield item

    run = Pipeline(ToyEngine(), workers=2)(counted())
    first = [next(run).frame for _ in range(5)]
    run.close()
    assert first == list(range(5))
    assert len(pulled) < 40  # bounded queues: the reader stays a few chunks ahead
    time.sleep(0.05)
    assert not pipeline_threads()


def test_a_stuck_engine_is_an_error_not_a_hang():
    class Stuck(ToyEngine):
        def submit(self, prepared, done) -> None:  # never calls done
            pass

    with pytest.raises(ModelError, match="--workers 0"):
        list(Pipeline(Stuck(), workers=1, stall_timeout=0.2)(frames(3)))


def test_bad_images_and_options_are_clear_errors():
    with pytest.raises(ModelError, match=r"uint8 images of shape \(H, W, 3\)"):
        list(Pipeline(ToyEngine(), workers=1)([(np.zeros((4, 4), np.float32), FrameMeta("x"))]))
    with pytest.raises(ModelError, match="at least 1 worker"):
        Pipeline(ToyEngine(), workers=0)
    assert 2 <= default_workers() <= 8


def test_an_empty_stream_gives_no_records():
    assert list(Pipeline(ToyEngine(), workers=2)(iter([]))) == []


@pytest.fixture
def mixed_folder(tmp_path):
    """Images of several sizes, a corrupt one, and a short video between them (sorted names)."""
    import cv2

    rng = np.random.default_rng(0)
    for i in range(9):
        image = rng.integers(0, 255, (20 + i, 30, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / f"a{i}.png"), image)
    (tmp_path / "a4.png").write_bytes(b"not a png")
    writer = cv2.VideoWriter(str(tmp_path / "b.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(7):
        writer.write(np.full((24, 32, 3), i * 30, np.uint8))
    writer.release()
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"c{i}.png"), np.full((10, 12, 3), i, np.uint8))
    return tmp_path


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_read_frames_gives_iter_frames_pairs_and_report(mixed_folder, workers):
    from cvactive.detect.pipeline import read_frames
    from cvactive.sources import SourceReport, iter_frames

    want_report, got_report = SourceReport(), SourceReport()
    want = list(iter_frames(mixed_folder, stride=2, report=want_report))
    got = list(read_frames(mixed_folder, stride=2, report=got_report, workers=workers))
    assert [m for _, m in got] == [m for _, m in want]
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(got, want))
    assert len(got) == 8 + 4 + 3  # 8 readable images, frames 0, 2, 4, 6 of the video, 3 more images
    assert got_report == want_report and [p for p, _ in got_report.failures] == [str(mixed_folder / "a4.png")]


def test_read_frames_strict_stops_at_the_broken_image(mixed_folder):
    from cvactive.detect.pipeline import read_frames

    seen = []
    with pytest.raises(SourceError, match=r"a4\.png"):
        for _, meta in read_frames(mixed_folder, strict=True, workers=3):
            seen.append(meta.source)
    assert [s.rsplit("/", 1)[-1] for s in seen] == ["a0.png", "a1.png", "a2.png", "a3.png"]


def test_an_engine_is_used_as_it_is_whatever_methods_it_has():
    """Only a real Detector is asked for its engine (engine_for); anything else is the engine itself,
    even one that has an ``engine`` method (no duck typing: the pipeline imports the detector)."""

    class Wrapping(ToyEngine):
        def engine(self, batch: int = 8) -> ToyEngine:
            raise AssertionError("the pipeline must not ask an engine for an engine")

    toy = ToyEngine()
    assert Pipeline(toy, workers=1).engine is toy
    wrapping = Wrapping()
    assert Pipeline(wrapping, workers=1).engine is wrapping
    assert len(list(Pipeline(Wrapping(batch=2), workers=1)(frames(5)))) == 5


def test_run_detector_checks_batch_and_workers_before_anything_runs():
    from cvactive.detect.pipeline import run_detector

    with pytest.raises(ModelError, match="workers"):
        run_detector(object(), iter([]), workers=-1)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="batch"):
        run_detector(object(), iter([]), batch=0, workers=2)  # type: ignore[arg-type]
