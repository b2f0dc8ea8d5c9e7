"""Model files: find them (paths or shipped names), read them safely, export them.

* a Lightning training checkpoint (``.ckpt``, written by ``python train.py``),
  read with ``torch.load(..., weights_only=True)``: the net's weights under
  ``state_dict`` (prefix ``net.``) and ``arch_config``;
* an exported model (``.safetensors``, written by :func:`export_checkpoint` /
  ``steg export``): the net's weights plus, in the safetensors metadata, the
  JSON architecture config, the format version and where it came from. It
  loads without Lightning or Hydra;
* the name of a shipped model: ``steg/pretrained/NAME.safetensors``
  (``"default"`` when no model is given).

The architecture config decides nothing before the weights are checked: the
net is first built on PyTorch's ``meta`` device (no memory), its parameter
names and shapes compared with the file's, and only then built for real, so a
tiny file cannot make steg allocate gigabytes; the meta build itself stops once
the net registers more parts than the file's tensor count (from its header) can
fill, so ``depth=200000`` in a 200-byte file fails in milliseconds. A ``target`` that is not built
in is refused before any import unless the user named it (``--allow-arch``,
:func:`steg.nets.allow_target`; see :mod:`steg.nets.registry` for that trust model).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from steg.io import one_line, write_atomic
from steg.nets import StegNet, net_class
from steg.nets.registry import model_file_targets

__all__ = [
    "DEFAULT_MODEL",
    "FORMAT",
    "FORMAT_VERSION",
    "PRETRAINED_DIR",
    "ModelError",
    "export_checkpoint",
    "load_net",
    "resolve_model_path",
    "shipped_models",
]

#: Value of the ``format`` metadata key of an exported model file.
FORMAT = "steg-model"
#: Version of the exported model format written by this code (and the newest it reads).
FORMAT_VERSION = 1
#: Folder of the shipped models: ``NAME.safetensors``.
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
#: Shipped model used when no model is given.
DEFAULT_MODEL = "default"

_CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")
_EXPORT_SUFFIX = ".safetensors"


class ModelError(ValueError):
    """A model that cannot be used: missing, not a model, corrupt, unknown architecture, mismatched weights."""


def _exc_line(exc: BaseException) -> str:
    return one_line(exc, limit=200)


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# --------------------------------------------------------------------------- #
# Finding and reading model files
# --------------------------------------------------------------------------- #


def shipped_models() -> list[str]:
    """Names of the shipped models (``steg/pretrained/NAME.safetensors``), sorted."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.stem for p in PRETRAINED_DIR.glob(f"*{_EXPORT_SUFFIX}") if p.is_file())


def _looks_like_path(model: str) -> bool:
    return (
        os.sep in model
        or (os.altsep is not None and os.altsep in model)
        or Path(model).suffix.lower() in (*_CHECKPOINT_SUFFIXES, _EXPORT_SUFFIX)
        or Path(model).expanduser().is_file()
    )


def resolve_model_path(model: str | os.PathLike | None = None) -> Path:
    """The file behind ``model``: a path to a .ckpt/.safetensors file, or a shipped model name.

    Raises:
        ModelError: one line, if the file (or the shipped model) does not exist.
    """
    if model is None:
        model = DEFAULT_MODEL
    if isinstance(model, os.PathLike) or _looks_like_path(str(model)):
        path = Path(model).expanduser()
        if not path.exists():
            raise ModelError(
                f"model file {path} not found (expected a training checkpoint .ckpt, "
                f"an exported {_EXPORT_SUFFIX} model, or the name of a shipped model)"
            )
        if not path.is_file():
            raise ModelError(f"model {path} is not a file (expected a .ckpt or {_EXPORT_SUFFIX} file)")
        return path
    name = str(model)
    path = PRETRAINED_DIR / f"{name}{_EXPORT_SUFFIX}"
    if path.is_file():
        return path
    available = shipped_models()
    hint = (
        f"shipped models: {', '.join(available)}"
        if available
        else "no model is shipped in this installation yet"
    )
    raise ModelError(
        f"shipped model {name!r} not found: expected the file {path} ({hint}); "
        f"pass --model with a training checkpoint (.ckpt) or an exported {_EXPORT_SUFFIX} file"
    )


def _sniff(path: Path) -> str:
    """'torch' (zip or pickle checkpoint), 'safetensors', or 'unknown', from the first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):
        return "torch"
    if len(head) >= 9 and head[8:9] == b"{":
        header_len = int.from_bytes(head[:8], "little")
        if 0 < header_len < 100_000_000:
            return "safetensors"
    return "unknown"


_NOT_A_MODEL = (
    "not a model file (expected a Lightning training checkpoint .ckpt written by train.py, "
    f"or a model exported with 'steg export' to {_EXPORT_SUFFIX})"
)


def _read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """(net state dict, arch_config, info) from a Lightning checkpoint."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for broken files
        text = one_line(exc, with_type=False)
        if "weights_only" in text or "Unsupported global" in text or "WeightsUnpickler" in text:
            raise ModelError(
                f"cannot load model {path}: the checkpoint holds objects that safe loading "
                f"(torch.load weights_only=True) refuses; expected a steg training checkpoint"
            ) from exc
        raise ModelError(f"cannot load model {path}: corrupt or truncated checkpoint ({_exc_line(exc)})") from exc
    if not isinstance(ckpt, dict):
        raise ModelError(f"cannot load model {path}: {_NOT_A_MODEL}")
    state = ckpt.get("state_dict")
    arch = ckpt.get("arch_config")
    if not isinstance(state, dict) or not isinstance(arch, dict):
        missing = [k for k, v in (("state_dict", state), ("arch_config", arch)) if not isinstance(v, dict)]
        raise ModelError(
            f"cannot load model {path}: a checkpoint without {' and '.join(repr(m) for m in missing)}; "
            "expected a steg training checkpoint written by train.py"
        )
    net_state = {k[len("net."):]: v for k, v in state.items() if isinstance(k, str) and k.startswith("net.")}
    if not net_state:
        raise ModelError(
            f"cannot load model {path}: the checkpoint's state_dict has no 'net.*' weights; "
            "expected a steg training checkpoint written by train.py"
        )
    bad = [k for k, v in net_state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelError(f"cannot load model {path}: weight {bad[0]!r} is not a tensor")
    info = {"kind": "checkpoint", "source": str(path)}
    for key in ("epoch", "global_step", "beta", "pytorch-lightning_version"):
        if isinstance(ckpt.get(key), (int, float, str)):
            info[key] = ckpt[key]
    return net_state, dict(arch), info


def _read_export(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """(net state dict, arch_config, metadata) from an exported .safetensors model."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = dict(fh.metadata() or {})
            state = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # noqa: BLE001 - SafetensorError and friends
        raise ModelError(f"cannot load model {path}: corrupt or truncated model file ({_exc_line(exc)})") from exc
    if meta.get("format") != FORMAT:
        raise ModelError(
            f"cannot load model {path}: a safetensors file without steg metadata "
            f"(format={meta.get('format')!r}, expected {FORMAT!r}); export models with 'steg export'"
        )
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise ModelError(f"cannot load model {path}: bad format_version {meta.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise ModelError(
            f"cannot load model {path}: model format version {version} is newer than this steg "
            f"reads ({FORMAT_VERSION}); upgrade steg"
        )
    try:
        arch = json.loads(meta.get("arch_config", ""))
    except json.JSONDecodeError as exc:
        raise ModelError(f"cannot load model {path}: arch_config metadata is not valid JSON ({_exc_line(exc)})") from exc
    if not isinstance(arch, dict):
        raise ModelError(f"cannot load model {path}: arch_config metadata is not a JSON object")
    info = {"kind": "export", "source": str(path), **{k: v for k, v in meta.items() if k != "arch_config"}}
    return state, arch, info


def _arch_text(arch: dict[str, Any]) -> str:
    args = ", ".join(f"{k}={v}" for k, v in arch.items() if k != "name")
    return f"{arch.get('name')!s}({args})"


#: A net registers at most this many parameters, buffers and submodules per tensor of its file (plus
#: :data:`_SLACK`) while it is built: activations, pooling and non-persistent buffers have no weights.
_PER_TENSOR = 8
_SLACK = 256


class _TooLarge(Exception):
    pass


@contextlib.contextmanager
def _bounded_construction(tensors: int, arch: dict[str, Any], path: Path):
    """Stop building a net (on ``meta``) once it registers more parts than a file of ``tensors`` weights can fill.

    A tiny file whose arch_config asks for ``depth=200000`` would otherwise spend
    minutes building a net its weights can never match; the work is bounded by
    the file's own tensor count (read from its header), whatever the architecture.
    """
    from torch.nn.modules import module as nn_module

    limit, count = _PER_TENSOR * tensors + _SLACK, [0]

    def hook(*_args):
        count[0] += 1
        if count[0] > limit:
            raise _TooLarge

    handles = [nn_module.register_module_parameter_registration_hook(hook),
               nn_module.register_module_buffer_registration_hook(hook),
               nn_module.register_module_module_registration_hook(hook)]
    try:
        yield
    except _TooLarge:
        raise ModelError(
            f"cannot load model {path}: weights do not match its architecture {_arch_text(arch)}: it needs more "
            f"than {limit} parameters, buffers and layers, and the file holds {tensors} tensors"
        ) from None
    finally:
        for handle in handles:
            handle.remove()


def _rebuild(arch: dict[str, Any], state: dict[str, torch.Tensor], path: Path) -> StegNet:
    """The net ``arch`` describes, with ``state`` loaded; shapes are checked before any allocation.

    Only built-in architectures and the targets the user allowed are imported (:func:`model_file_targets`).
    """
    with model_file_targets():
        return _rebuild_checked(arch, state, path)


def _rebuild_checked(arch: dict[str, Any], state: dict[str, torch.Tensor], path: Path) -> StegNet:
    try:
        cls = net_class(arch)
    except ValueError as exc:
        raise ModelError(f"cannot load model {path}: {one_line(exc, with_type=False)}") from None
    kwargs = {k: v for k, v in arch.items() if k not in ("name", "target")}
    try:
        with torch.device("meta"), _bounded_construction(len(state), arch, path):  # shapes, no memory
            expected = {k: tuple(v.shape) for k, v in cls(**kwargs).state_dict().items()}
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bad config may raise anything in a constructor
        raise ModelError(
            f"cannot load model {path}: invalid arch_config for {arch.get('name')!r} ({_exc_line(exc)})"
        ) from exc
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of the wrong shape (e.g. {k}: {tuple(state[k].shape)} in the file, "
                         f"{expected[k]} expected)")
        raise ModelError(
            f"cannot load model {path}: weights do not match its architecture {_arch_text(arch)}: " + ", ".join(parts)
        )
    net = cls(**kwargs)  # as large as the file's own weights
    try:
        net.load_state_dict(state, strict=True)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"cannot load model {path}: weights do not load ({_exc_line(exc)})") from exc
    return net


def load_net(model: str | os.PathLike | None = None) -> tuple[StegNet, dict[str, Any]]:
    """Rebuild the net of a model file or shipped model, in eval mode on the CPU.

    Returns:
        (net, info): ``info`` describes where the weights came from
        (``kind`` 'checkpoint' or 'export', ``source`` path, epoch, ...).

    Raises:
        ModelError: one line naming the file, for a missing file, a file that
            is not a model, a corrupt or truncated one, an unknown architecture
            or weights that do not match the architecture (strict loading).
    """
    path = resolve_model_path(model)
    if path.stat().st_size == 0:
        raise ModelError(f"cannot load model {path}: empty file; {_NOT_A_MODEL}")
    kind = _sniff(path)
    if kind == "torch":
        state, arch, info = _read_checkpoint(path)
    elif kind == "safetensors":
        state, arch, info = _read_export(path)
    else:
        raise ModelError(f"cannot load model {path}: {_NOT_A_MODEL}")
    net = _rebuild(arch, state, path)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net, info


# --------------------------------------------------------------------------- #
# Export
# --------------------------------------------------------------------------- #


def export_checkpoint(
    ckpt: str | os.PathLike, out: str | os.PathLike, force: bool = False
) -> Path:
    """Write a training checkpoint's net as a standalone ``.safetensors`` model file.

    The file holds the net's weights and, as safetensors metadata (strings):
    ``format`` ('steg-model'), ``format_version``, ``arch_config`` (JSON),
    ``source_checkpoint`` (file name), ``source_sha256``, the checkpoint's
    ``epoch``/``global_step``/``beta`` where present, ``created_utc``,
    ``torch_version``. It loads with :func:`load_model` without Lightning or Hydra.

    Raises:
        ModelError: the checkpoint cannot be loaded, the output name does not
            end in .safetensors, the output exists (and not ``force``), or the
            output is the checkpoint itself.
    """
    ckpt, out = Path(ckpt).expanduser(), Path(out).expanduser()
    if out.suffix.lower() != _EXPORT_SUFFIX:
        raise ModelError(f"output {out}: an exported model must be a {_EXPORT_SUFFIX} file")
    if not ckpt.exists():
        raise ModelError(f"checkpoint {ckpt} not found (expected a training checkpoint .ckpt written by train.py)")
    if not ckpt.is_file():
        raise ModelError(f"checkpoint {ckpt} is not a file (expected a training checkpoint .ckpt written by train.py)")
    if out.exists() and (out.resolve() == ckpt.resolve() or os.path.samefile(out, ckpt)):
        raise ModelError(f"output {out} is the input checkpoint; choose another output name")
    if out.exists() and not force:
        raise ModelError(f"output {out} already exists; pass --force to overwrite it")
    if out.is_dir():
        raise ModelError(f"output {out} is a folder")
    if _sniff(ckpt) != "torch":
        raise ModelError(
            f"cannot export {ckpt}: not a training checkpoint (expected a Lightning .ckpt written by train.py)"
        )
    state, arch, info = _read_checkpoint(ckpt)
    net = _rebuild(arch, state, ckpt)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "arch_config": json.dumps(net.arch_config, sort_keys=True),
        "source_checkpoint": ckpt.name,
        "source_sha256": _file_sha256(ckpt),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "torch_version": torch.__version__,
    }
    for key in ("epoch", "global_step", "beta"):
        if key in info:
            meta[key] = str(info[key])

    from safetensors.torch import save_file

    return write_atomic(out, lambda tmp: save_file(tensors, tmp, metadata=meta), exclusive=not force)
