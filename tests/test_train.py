import pytest

from cvactive.architectures import resolve_model, scaled_architecture
from cvactive.errors import ConfigError, DatasetError, ModelError
from cvactive.train import train_detector


def test_scaled_architecture_is_narrower(tmp_path):
    import yaml

    arch = yaml.safe_load(scaled_architecture("pico", tmp_path).read_text())
    assert arch["scales"] == {"n": [0.33, 0.125, 1024]}
    with pytest.raises(ConfigError, match="valid scales: pico, n, s"):
        scaled_architecture("xxl", tmp_path)


def test_bad_inputs(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        train_detector(tmp_path / "missing.yaml", tmp_path)
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(tmp_path / "missing.pt", tmp_path)


@pytest.mark.slow
def test_porch_model_trains_and_detects(porch_model, porch_model_data):
    from cvactive.detect.model import Detector
    from cvactive.sources import iter_frames

    detector = Detector(porch_model, imgsz=256, conf=0.25)
    assert detector.names == {0: "brown_box", 1: "white_envelope", 2: "yellow_box"}
    frames = list(iter_frames(porch_model_data.parent / "images" / "val"))[:20]
    records = detector.predict([f for f, _ in frames], [m for _, m in frames])
    assert sum(len(r) for r in records) > 10  # a trained model finds packages


def test_training_and_validation_run_nms_without_its_time_limit():
    """Ultralytics stops NMS mid-batch after 2 s + 0.05 s an image; on a loaded CPU that silently
    drops the boxes of a batch's later images and lowers the mAP by chance."""
    import math

    from ultralytics.utils import nms

    from cvactive.train_hooks import full_nms

    original = nms.non_max_suppression
    with full_nms():
        inside = nms.non_max_suppression
        assert inside is not original and getattr(inside, "keywords", None) == {"max_time_img": math.inf}
        assert getattr(inside, "func", None) is original
    assert nms.non_max_suppression is original
    with pytest.raises(RuntimeError), full_nms():
        raise RuntimeError("a failed validation")
    assert nms.non_max_suppression is original  # restored however the block ends


def test_steps_recipe_sets_epochs_from_the_labeled_set_size():
    from cvactive.recipes import RECIPES

    steps = RECIPES["steps"]  # 80 steps of 8 images, 8 warm-up steps, mosaic from 100 images
    small = steps.plan(40, epochs=10, batch=16)
    assert (small.epochs, small.batch, small.batches(40)) == (16, 8, 80)  # 5 batches an epoch
    assert small.args["nbs"] == 8  # one optimizer step per batch: no accumulation
    assert small.args["warmup_epochs"] == pytest.approx(8 / 5)  # 8 steps of 5 batches an epoch
    assert (small.args["mosaic"], small.args["close_mosaic"]) == (0.0, 0)
    assert small.args["optimizer"] == "AdamW" and small.args["lr0"] == 0.001
    large = steps.plan(160, epochs=10, batch=16)
    assert (large.epochs, large.batches(160)) == (4, 80)
    assert large.args["warmup_epochs"] == pytest.approx(8 / 20)
    assert (large.args["mosaic"], large.args["close_mosaic"]) == (1.0, 1)  # the last quarter without
    odd = steps.plan(250, epochs=10, batch=16)  # 32 batches an epoch: rounded up to whole epochs
    assert (odd.epochs, odd.batches(250)) == (3, 96)
    assert RECIPES["steps-frozen"].plan(40, epochs=10, batch=16).args["freeze"] == 10
    scaled = RECIPES["scaled"]  # 80 steps, or 10 passes over the set when that is more
    assert scaled.plan(40, epochs=10, batch=16).batches(40) == 80  # as steps: 16 passes of 5 batches
    grown = scaled.plan(240, epochs=10, batch=16)
    assert (grown.epochs, grown.batches(240), grown.args["close_mosaic"]) == (10, 300, 2)
    assert grown.batches(240) * grown.batch == 10 * 240  # the images of the epochs recipe's 10 epochs


def test_epochs_recipe_is_ultralytics_defaults_and_bad_recipes_are_refused():
    from cvactive.recipes import Recipe, get_recipe

    plan = get_recipe("epochs").plan(40, epochs=10, batch=16)
    assert (plan.epochs, plan.batch, plan.args, plan.batches(40)) == (10, 16, {}, 30)
    with pytest.raises(ConfigError, match="valid recipes: epochs, steps"):
        get_recipe("fast")
    with pytest.raises(ConfigError, match="at least 1 image"):
        plan = get_recipe("steps").plan(0, epochs=10, batch=16)
    with pytest.raises(ConfigError, match="steps must be >= 1"):
        Recipe("broken", steps=0).plan(40, epochs=10, batch=16)


def test_train_images_counts_listings_and_folders(tmp_path):
    from cvactive.train import _train_images

    (tmp_path / "images").mkdir()
    for i in range(3):
        (tmp_path / "images" / f"{i}.jpg").write_bytes(b"")
    (tmp_path / "list.txt").write_text("a.jpg\nb.jpg\n\n")
    (tmp_path / "folder.yaml").write_text("train: images\nnames: [a]\n")
    (tmp_path / "both.yaml").write_text(f"path: {tmp_path}\ntrain: [images, list.txt]\nnames: [a]\n")
    (tmp_path / "none.yaml").write_text("train: missing\nnames: [a]\n")
    assert _train_images(tmp_path / "folder.yaml") == 3
    assert _train_images(tmp_path / "both.yaml") == 5
    with pytest.raises(DatasetError, match="names no images"):
        _train_images(tmp_path / "none.yaml")


@pytest.mark.slow
def test_a_steps_recipe_reaches_ultralytics_trainer(tmp_path, porch_model_data, monkeypatch):
    """The recipe's schedule is what Ultralytics runs: one optimizer step per batch, its optimizer,
    learning rate, warm-up and mosaic; the counters say what the trainer did; ``val=False``
    validates nothing (Ultralytics would validate the last epoch and best.pt)."""
    import yaml
    from ultralytics.models.yolo.detect import DetectionValidator

    from cvactive.recipes import Recipe, epoch_schedule_steps
    from cvactive.train import train_detector

    validations = []
    original = DetectionValidator.__call__

    def counted(self, *args, **kwargs):  # the real validator, counted
        validations.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DetectionValidator, "__call__", counted)

    recipe = Recipe(
        "tiny", steps=12, batch=32, warmup_steps=2, optimizer="AdamW", lr0=0.002, lrf=0.1, cos_lr=True, mosaic_min=500
    )
    result = train_detector(porch_model_data, tmp_path, model="pico", imgsz=96, recipe=recipe, val=False)
    args = yaml.safe_load((result.run_dir / "args.yaml").read_text())
    # 160 images in batches of 32: 5 batches an epoch, 12 steps -> 3 epochs -> 15 batches
    assert (args["epochs"], args["batch"], args["nbs"]) == (3, 32, 32)
    assert (args["optimizer"], args["lr0"], args["lrf"], args["cos_lr"]) == ("AdamW", 0.002, 0.1, True)
    assert args["warmup_epochs"] == pytest.approx(2 / 5) and args["mosaic"] == 0.0
    assert (result.epochs, result.batches, result.steps, result.images) == (3, 15, 15, 480)
    assert result.schedule["nbs"] == 32 and result.weights.is_file()
    # Ultralytics' own schedule accumulates gradients to 64 images: fewer steps than batches
    plain = train_detector(porch_model_data, tmp_path, model="pico", imgsz=96, epochs=1, batch=32, val=False, name="e")
    assert (plain.batches, plain.images) == (5, 160) and 1 <= plain.steps < plain.batches
    assert plain.steps == epoch_schedule_steps(160, epochs=1, batch=32)  # the arithmetic is Ultralytics'
    assert validations == [] and plain.weights.name == "best.pt"
    validated = train_detector(porch_model_data, tmp_path, model="pico", imgsz=96, epochs=1, batch=32, name="v")
    assert len(validations) == 2 and validated.weights.is_file()  # the last epoch and best.pt, as Ultralytics does
    # Ultralytics read a view of links in the run's folder: its label caches are there, none beside the data set's
    assert not list(porch_model_data.parent.rglob("*.cache"))
    assert {p.name for p in (tmp_path / "dataview" / "labels").glob("*.cache")} == {"train.cache", "val.cache"}


def test_ultralytics_epoch_schedule_takes_few_optimizer_steps_on_small_sets():
    """Accumulation to 64 images and 3 warm-up epochs: 10 epochs of 40 images are 9 steps (measured
    on HIT-UAV, benchmarks/results/recipe), of 250 images 51."""
    from cvactive.recipes import epoch_schedule_steps

    assert epoch_schedule_steps(40, epochs=10, batch=16) == 9
    assert epoch_schedule_steps(250, epochs=10, batch=16) == 51
    assert epoch_schedule_steps(64, epochs=1, batch=64) == 1  # no accumulation, no warm-up in one epoch
    assert epoch_schedule_steps(40, epochs=10, batch=16, warmup_epochs=0) == 7  # every 4th of 30 batches


def test_dataloader_workers_reach_the_cpu_trainer(tmp_path, porch_model_data, monkeypatch):
    """Ultralytics sets workers=0 whenever it trains on the CPU; a number the caller gives is used there
    too, and None leaves Ultralytics' choice (the real data loaders are built, their worker count seen)."""
    import ultralytics.models.yolo.detect.train as detect_train

    seen = []
    real = detect_train.build_dataloader

    def spied(dataset, batch, workers, *args, **kwargs):  # the real loader, its worker count recorded
        seen.append(workers)
        return real(dataset, batch, workers, *args, **kwargs)

    monkeypatch.setattr(detect_train, "build_dataloader", spied)
    train_detector(porch_model_data, tmp_path, model="pico", imgsz=96, epochs=1, batch=32, val=False, workers=1)
    assert seen[0] == 1
    seen.clear()
    train_detector(porch_model_data, tmp_path, model="pico", imgsz=96, epochs=1, batch=32, val=False, name="u")
    assert seen[0] == 0  # Ultralytics' choice on the CPU
    with pytest.raises(ConfigError, match="workers must be 0 or more"):
        train_detector(porch_model_data, tmp_path, model="pico", imgsz=96, epochs=1, val=False, workers=-1, name="n")
