"""ONNX export of a model's hide and reveal graphs, for onnxruntime and the browser page.

``steg export MODEL -o NAME.onnx`` (or :func:`export_onnx`) writes two files:

* ``NAME.hide.onnx``: inputs ``cover`` and ``secret``, output ``stego``;
* ``NAME.reveal.onnx``: input ``stego``, output ``secret``.

Every tensor is **uint8**, shape (N, C, H, W), values 0..255: the graphs hold
the conversion to [0, 1] floats and the 8-bit quantization of the result
(clamp, ``* 255``, round half to even), so the stego output is exactly what a
PNG stores and a client only copies bytes. N, H and W are dynamic, any H and W
of at least ``size_multiple``: the graphs reflect-pad the bottom and right to the
net's ``size_multiple`` and crop the result back, as
:class:`steg.inference.model.StegModel` does (below one tile: the same pixels).
C is fixed (3 for RGB models, 1 for grayscale ones). Opset :data:`OPSET`,
written by the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``).

Each file carries, as ONNX ``metadata_props`` (strings), what a client needs to
pad and tile like the Python side: ``format`` ('steg-onnx'),
``format_version``, ``graph`` ('hide' or 'reveal'), ``inputs``/``outputs``
(comma-separated names), ``channels``, ``size_multiple``, ``tile`` and
``margin`` (the Python side's tiling: see :func:`steg.inference.tiling.auto_tile`),
``arch_config`` (JSON), ``description``, ``source`` and ``torch_version``.

Keys: the graphs are the method's keyed protocol called without a key
(:meth:`steg.nets.StegNet.hide_with_key` / ``reveal_with_key`` with ``key=None``),
like every other caller of a method; a keyed model's key transform (qim's keyed
dither, the default mode's scrambling) is not in them (``steg export`` says so for
a model trained with ``model.keyed=true``). A keyed graph would add its key as one
more input listed in ``inputs``; clients feed the inputs listed there, so the
format would need no other change.

:func:`run_onnx` runs an exported pair with onnxruntime (CPU) on uint8 arrays;
it is what the parity tests compare with PyTorch.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "OPSET",
    "HideGraph",
    "RevealGraph",
    "OnnxError",
    "onnx_paths",
    "export_onnx",
    "read_metadata",
    "run_onnx",
]

#: Value of the ``format`` metadata key of an exported graph.
FORMAT = "steg-onnx"
#: Version of that format written (and read) by this code.
FORMAT_VERSION = 1
#: ONNX opset of the exported graphs (onnxruntime >= 1.14 and onnxruntime-web run it).
OPSET = 17
#: Height and width of the dummy input used to trace the graphs (any multiple of 8 works).
_TRACE_SIDE = 64
_SUFFIX = ".onnx"
_GRAPHS = ("hide", "reveal")


class OnnxError(ValueError):
    """An ONNX export that cannot be written, or a file that is not a steg ONNX graph."""


def _to_float(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float32) / 255.0


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    # the same steps as steg.inference.model's quantization and to_pil: clamp, * 255, round half to even
    return torch.round(x.clamp(0.0, 1.0) * 255.0).to(torch.uint8)


def _padded(multiple: int, run, *images: torch.Tensor) -> torch.Tensor:
    """``run(*images)`` with (N, C, H, W) images reflect-padded at the bottom and right to ``multiple``, cropped back.

    Traced with the image's own shape, so the exported graph pads any dynamic H, W >= ``multiple``
    (StegModel's :func:`steg.inference.tiling.pad_bottom_right`, reflect branch).
    """
    h, w = images[0].shape[-2], images[0].shape[-1]
    pad_h, pad_w = (multiple - h % multiple) % multiple, (multiple - w % multiple) % multiple
    padded = [torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="reflect") for x in images]
    return run(*padded)[..., :h, :w]


class HideGraph(nn.Module):
    """The net's keyless hide on uint8 images: (N, C, H, W) uint8 x2 -> stego (N, C, H, W) uint8."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, cover: torch.Tensor, secret: torch.Tensor) -> torch.Tensor:
        return _to_uint8(_padded(self.net.size_multiple, self.net.hide_with_key, _to_float(cover), _to_float(secret)))


class RevealGraph(nn.Module):
    """The net's keyless reveal on uint8 images: stego (N, C, H, W) uint8 -> secret (N, C, H, W) uint8."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, stego: torch.Tensor) -> torch.Tensor:
        return _to_uint8(_padded(self.net.size_multiple, self.net.reveal_with_key, _to_float(stego)))


def onnx_paths(out: str | os.PathLike) -> dict[str, Path]:
    """``NAME.onnx`` -> {'hide': NAME.hide.onnx, 'reveal': NAME.reveal.onnx} (same folder).

    Raises:
        OnnxError: ``out`` does not end in .onnx.
    """
    out = Path(out).expanduser()
    if out.suffix.lower() != _SUFFIX:
        raise OnnxError(
            f"output {out}: an ONNX export is named NAME.onnx (it writes NAME.hide.onnx and NAME.reveal.onnx)"
        )
    stem = out.name[: -len(_SUFFIX)]
    for graph in _GRAPHS:  # "x.hide.onnx" given: write x.hide.onnx / x.reveal.onnx, not x.hide.hide.onnx
        if stem.endswith(f".{graph}"):
            stem = stem[: -len(graph) - 1]
    if not stem:
        raise OnnxError(f"output {out}: empty model name before .onnx")
    return {graph: out.with_name(f"{stem}.{graph}{_SUFFIX}") for graph in _GRAPHS}


def _load(model: Any):
    from steg.inference.model import StegModel, load_model

    return model if isinstance(model, StegModel) else load_model(model)


def _description(model) -> str:
    """``model.describe()`` with the model file's folder left out (it is of no use to a page's reader)."""
    text = model.describe()
    return text.replace(str(model.source), Path(model.source).name) if model.source else text


def _metadata(model, graph: str, inputs: list[str], outputs: list[str]) -> dict[str, str]:
    net = model.net
    return {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "graph": graph,
        "inputs": ",".join(inputs),
        "outputs": ",".join(outputs),
        "channels": str(model.channels),
        "size_multiple": str(model.size_multiple),
        "tile": str(model.tile or 0),
        "margin": str(model.margin),
        "arch_config": json.dumps(net.arch_config, sort_keys=True),
        "description": _description(model),
        "source": Path(model.source).name if model.source else "",
        "torch_version": torch.__version__,
    }


def _export_graph(module: nn.Module, args: tuple, inputs: list[str], outputs: list[str], path: str) -> None:
    axes = {name: {0: "batch", 2: "height", 3: "width"} for name in inputs + outputs}
    with warnings.catch_warnings():
        # torch 2.9+ marks the TorchScript exporter deprecated; it is the one that keeps
        # dynamic height/width through the qim dither's repeat without rewriting the net.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message=".*TracerWarning.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            module, args, path, dynamo=False, opset_version=OPSET,
            input_names=inputs, output_names=outputs, dynamic_axes=axes, do_constant_folding=True,
        )


def export_onnx(model: Any, out: str | os.PathLike, force: bool = False) -> dict[str, Path]:
    """Export ``model``'s hide and reveal graphs as ``NAME.hide.onnx`` and ``NAME.reveal.onnx``.

    Args:
        model: a :class:`steg.inference.model.StegModel`, or anything :func:`steg.load_model`
            takes (a .ckpt, an exported .safetensors, a shipped model's name).
        out: ``NAME.onnx``; see :func:`onnx_paths`.
        force: overwrite existing outputs.

    Returns:
        {'hide': path, 'reveal': path}. Each file is written atomically; if the
        second one fails, the first one written by this call is removed again.

    Raises:
        OnnxError: bad output name, an output that exists (without ``force``)
            or is a folder. ModelError (from loading): a bad model.
    """
    import onnx

    from steg.device import placement
    from steg.io import write_atomic

    paths = onnx_paths(out)
    for path in paths.values():
        if path.is_dir():
            raise OnnxError(f"output {path} is a folder; expected a file name")
        if path.exists() and not force:
            raise OnnxError(f"output {path} already exists; pass --force to overwrite it")
    model = _load(model)
    net = model.net.eval()
    c, side = model.channels, max(_TRACE_SIDE, model.size_multiple)
    dummy = torch.randint(0, 256, (1, c, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    dummy = dummy.to(placement(net)[0])  # traced where the net is (a model loaded with --device cuda)
    specs = {
        "hide": (HideGraph(net), (dummy, dummy.flip(-1)), ["cover", "secret"], ["stego"]),
        "reveal": (RevealGraph(net), (dummy,), ["stego"], ["secret"]),
    }

    def write(graph: str, tmp: str) -> None:
        module, args, inputs, outputs = specs[graph]
        _export_graph(module, args, inputs, outputs, tmp)
        proto = onnx.load(tmp)
        onnx.checker.check_model(proto)
        for key, value in _metadata(model, graph, inputs, outputs).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, tmp)

    written: list[Path] = []
    try:
        with torch.inference_mode():
            for graph, path in paths.items():
                write_atomic(path, lambda tmp, g=graph: write(g, tmp))
                written.append(path)
    except BaseException:
        if len(written) < len(paths):
            for path in written:
                path.unlink(missing_ok=True)
        raise
    return paths


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The steg metadata of an exported graph (see the module docstring).

    Raises:
        OnnxError: one line naming the file, for a missing file or one that is not a steg ONNX graph.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise OnnxError(f"ONNX graph {path} not found")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types
        raise OnnxError(f"cannot read ONNX graph {path}: not an ONNX file ({type(exc).__name__})") from exc
    meta = {p.key: p.value for p in proto.metadata_props}
    if meta.get("format") != FORMAT:
        raise OnnxError(f"ONNX graph {path} has no steg metadata (format={meta.get('format')!r}, expected {FORMAT!r})")
    if int(meta.get("format_version", "0")) > FORMAT_VERSION:
        raise OnnxError(f"ONNX graph {path}: format version {meta['format_version']} is newer than this steg reads")
    return meta


def run_onnx(path: str | os.PathLike, **inputs: np.ndarray) -> np.ndarray:
    """Run one exported graph with onnxruntime (CPU, one thread) on uint8 (N, C, H, W) arrays.

    Example: ``run_onnx("m.hide.onnx", cover=c, secret=s)`` -> stego (N, C, H, W) uint8.
    Any H and W of at least the graph's ``size_multiple`` (the graph pads and crops).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    feeds = {name: np.ascontiguousarray(value, dtype=np.uint8) for name, value in inputs.items()}
    return session.run(None, feeds)[0]
