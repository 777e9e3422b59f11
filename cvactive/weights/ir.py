"""Reading an Ultralytics OpenVINO export: its files and every convolution's folded weights (OpenVINO adapter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cvactive.errors import MissingDependencyError, ModelError

_PREFIX = "__module."


def find_ir(ir: str | Path) -> tuple[Path, Path, Path | None]:
    """The ``.xml``, ``.bin`` and ``metadata.yaml`` (or ``None``) of an IR folder or ``.xml`` path."""
    path = Path(ir)
    if path.is_dir():
        xmls = sorted(path.glob("*.xml"))
        if len(xmls) != 1:
            raise ModelError(f"{path}: expected one OpenVINO .xml in the folder, found {len(xmls)}")
        xml = xmls[0]
    elif path.suffix == ".xml" and path.is_file():
        xml = path
    else:
        raise ModelError(f"OpenVINO model {str(path)!r} does not exist (give the export folder or its .xml)")
    binf = xml.with_suffix(".bin")
    if not binf.is_file():
        raise ModelError(f"{xml}: its weights file {binf.name} is missing")
    meta = xml.parent / "metadata.yaml"
    return xml, binf, meta if meta.is_file() else None


# ---------------------------------------------------------------------------------------------
# Reading folded weights out of the IR


def _const_value(output: Any) -> np.ndarray:
    """Evaluate a constant sub-graph (Constant, Convert, Subtract, Multiply, Reshape...) to float32."""
    node = output.get_node()
    kind = node.get_type_name()
    if kind == "Constant":
        return np.asarray(node.get_data()).astype(np.float32)
    if kind == "Convert":
        return _const_value(node.input_value(0))
    if kind in ("Subtract", "Multiply", "Add", "Divide"):
        a, b = _const_value(node.input_value(0)), _const_value(node.input_value(1))
        op = {"Subtract": np.subtract, "Multiply": np.multiply, "Add": np.add, "Divide": np.divide}[kind]
        return op(a, b).astype(np.float32)
    if kind in ("Reshape", "Unsqueeze", "Squeeze"):
        return _const_value(node.input_value(0)).reshape(tuple(node.get_output_shape(0).to_shape()))
    if kind == "FakeQuantize":  # weights quantised in place: evaluate the quantisation grid
        x = _const_value(node.input_value(0))
        lo, hi = _const_value(node.input_value(1)), _const_value(node.input_value(2))
        olo, ohi = _const_value(node.input_value(3)), _const_value(node.input_value(4))
        levels = int(node.get_attributes()["levels"])
        q = np.round((np.clip(x, lo, hi) - lo) / (hi - lo) * (levels - 1))
        return (q / (levels - 1) * (ohi - olo) + olo).astype(np.float32)
    raise ModelError(f"node {node.get_friendly_name()!r}: cannot evaluate a {kind} node as a constant weight")


def read_folded_convolutions(xml: Path) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Module path (``model.2.cv1.conv``) -> (folded float32 weight, bias or ``None``) of every convolution."""
    try:
        import openvino as ov
    except ImportError as err:
        raise MissingDependencyError(
            "reading an OpenVINO model needs openvino: pip install 'cvactive[openvino]'"
        ) from err
    try:
        model = ov.Core().read_model(str(xml))
    except RuntimeError as err:
        raise ModelError(f"{xml}: OpenVINO cannot read it: {err}") from err
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    unnamed: list[str] = []
    for node in model.get_ordered_ops():
        if node.get_type_name() != "Convolution":
            continue
        name = node.get_friendly_name()
        head = name.split("/", 1)[0]
        if not head.startswith(_PREFIX):
            unnamed.append(name)
            continue
        weight = _const_value(node.input_value(1))
        bias = None
        for target in node.output(0).get_target_inputs():
            add = target.get_node()
            if add.get_type_name() != "Add":
                continue
            other = add.input_value(1 - target.get_index())
            try:
                bias = _const_value(other).reshape(-1)
            except ModelError:
                continue
        out[head[len(_PREFIX) :]] = (weight, bias)
    if unnamed:
        raise ModelError(
            f"{xml}: {len(unnamed)} convolution(s) do not carry an Ultralytics module name, e.g. {unnamed[0]!r}; "
            "export the model with Ultralytics (model.export(format='openvino'))"
        )
    if not out:
        raise ModelError(f"{xml}: no convolution found; is it a detection model?")
    return out


# ---------------------------------------------------------------------------------------------
