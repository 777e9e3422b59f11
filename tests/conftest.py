"""Shared fixtures. Every test runs offline, writes only under temporary folders and uses
its own FiftyOne database directory and Ultralytics settings folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="cvactive-tests-"))
for key, value in {
    "YOLO_CONFIG_DIR": str(_SESSION_TMP / "ultralytics"),
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "false",
    "FIFTYONE_DATABASE_DIR": str(_SESSION_TMP / "fiftyone-db"),
    "FIFTYONE_DO_NOT_TRACK": "true",
    "FIFTYONE_DATABASE_VALIDATION": "false",
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "MPLBACKEND": "Agg",
    "CVACTIVE_DATA": str(_SESSION_TMP / "data"),
}.items():
    os.environ[key] = value
# the shared assets beside this checkout, whatever folder a test runs in (cvactive's own default is
# ../shared/assets from the working directory: cvactive.assets)
os.environ.setdefault("CVACTIVE_ASSETS", str(Path(__file__).resolve().parent.parent.parent / "shared" / "assets"))

from cvactive.assets import OPENVINO_MODEL, asset, assets_dir  # noqa: E402


def _stop_fiftyone_database() -> None:
    """Stop the mongod this session started before its folder is removed (else it aborts)."""
    import sys

    database = sys.modules.get("fiftyone.core.odm.database")
    service = getattr(database, "_db_service", None)
    child = getattr(service, "child", None)
    if service is None or child is None:
        return
    service.stop()
    with contextlib.suppress(Exception):  # the service may already be gone; the folder goes either way
        child.wait(timeout=30)
    database._db_service = None  # type: ignore[union-attr]


def _assets_state() -> dict[str, tuple[int, int]]:
    """Size and modification time of every file under the shared assets (nothing may write there)."""
    root = assets_dir()
    if root is None:
        return {}
    state = {}
    for folder, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                stat = os.stat(os.path.join(folder, name))
                state[os.path.relpath(os.path.join(folder, name), root)] = (stat.st_size, stat.st_mtime_ns)
    return state


_ASSETS_BEFORE = _assets_state()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _stop_fiftyone_database()
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)
    after = _assets_state()
    changed = sorted(k for k in after.keys() | _ASSETS_BEFORE.keys() if after.get(k) != _ASSETS_BEFORE.get(k))
    if changed:  # a test (or anything it ran, such as Ultralytics' label caches) wrote into the user's data
        print(f"\nthe shared assets changed during the tests ({len(changed)} files): {', '.join(changed[:10])}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def session_tmp() -> Path:
    return _SESSION_TMP


@pytest.fixture(scope="session")
def assets() -> Path:
    root = assets_dir()
    if root is None:
        pytest.skip("real test assets not found: set CVACTIVE_ASSETS or put shared/assets beside the checkout")
    return root


@pytest.fixture(scope="session")
def openvino_model(assets: Path) -> str:
    path = asset(OPENVINO_MODEL)
    if path is None:
        pytest.skip(f"{OPENVINO_MODEL} missing from the assets folder")
    return str(path)


@pytest.fixture(scope="session")
def ultralytics_images() -> dict[str, str]:
    """Ultralytics' bundled bus.jpg and zidane.jpg (shipped inside the package)."""
    import ultralytics

    folder = Path(ultralytics.__file__).parent / "assets"
    return {name: str(folder / f"{name}.jpg") for name in ("bus", "zidane")}


@pytest.fixture(scope="session")
def porch_data(session_tmp: Path) -> Path:
    """A small porch data set with its video; returns the path of its data.yaml."""
    from cvactive.porch import PorchRecipe, write_dataset

    recipe = PorchRecipe.load(train=60, val=20, video_seconds=6)
    return write_dataset(session_tmp / "porch-small", recipe)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def porch_model_data(session_tmp: Path) -> Path:
    """A porch data set big enough to train on (160 train / 40 val); returns its data.yaml."""
    from cvactive.porch import PorchRecipe, write_dataset

    return write_dataset(session_tmp / "porch-train", PorchRecipe.load(train=160, val=40, video_seconds=8))


@pytest.fixture(scope="session")
def porch_model(session_tmp: Path, porch_model_data: Path) -> Path:
    """A small detector trained once per session by cvactive's own code on the porch data (pico scale).

    It is weak (a couple of minutes of CPU training): it finds brown boxes well and predicts every
    class, but not every class well enough for an AP above 0; tests that need a trained PyTorch
    model share it.
    """
    from cvactive.train import train_detector

    result = train_detector(porch_model_data, session_tmp / "porch-runs", model="pico", epochs=30, imgsz=256)
    return result.weights


@pytest.fixture(scope="session")
def pretrained_pt(assets: Path) -> Path:
    """The COCO-pretrained YOLOv8n rebuilt from the shared OpenVINO export (once per session, ~20 s)."""
    from cvactive.weights import pretrained_available, pretrained_checkpoint

    if not pretrained_available():
        pytest.skip("the shared OpenVINO YOLOv8n or the coco128 calibration images are missing")
    return pretrained_checkpoint()


@pytest.fixture(scope="session")
def coco128_val_yaml(session_tmp: Path, assets: Path) -> Path:
    """A data.yaml for the 128 coco128 val2017 images with an absolute path (the shipped one says ``path: .``)."""
    import yaml

    root = assets / "coco128"
    data = yaml.safe_load((root / "config.yaml").read_text())
    data.update(path=str(root), train="images/train2017", val="images/val2017")
    out = session_tmp / "coco128-val.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out
