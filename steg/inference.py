"""Inference with trained hide/reveal nets: any image size, bounded memory.

Quick start::

    from steg import load_model

    model = load_model()                    # the shipped model "default"
    stego = model.hide(cover, secret)       # PIL in -> 8-bit PIL out
    stego.save("stego.png")                 # PNG only: lossy formats destroy the secret
    revealed = model.reveal(stego)

``cover``/``secret``/``stego`` may be PIL images, image file paths, or float
tensors in [0, 1] of shape (C, H, W) or (B, C, H, W); results come back as the
same kind (a path gives a PIL image).

Model files (``load_model(model)``):

* a Lightning training checkpoint (``.ckpt``, written by ``python train.py``),
  read with ``torch.load(..., weights_only=True)``: the net's weights under
  ``state_dict`` (prefix ``net.``) and ``arch_config``;
* an exported model (``.safetensors``, written by :func:`export_checkpoint` /
  ``steg export``): the net's weights plus, in the safetensors metadata, the
  JSON architecture config, the format version and where it came from. It
  loads without Lightning or Hydra;
* the name of a shipped model: ``steg/pretrained/NAME.safetensors``
  (``"default"`` when no model is given).

The nets are fully convolutional. Images are reflect-padded to the net's
``size_multiple`` and cropped back. Images larger than one tile are processed
in overlapping tiles (origins on multiples of ``size_multiple``; each tile is
extended by a margin wider than the nets' receptive-field radius and only its
centre is kept), so that results equal the untiled ones up to float rounding
while peak memory stays bounded whatever the image size.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import inspect
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import torch
import torch.nn.functional as F
from PIL import Image

from steg.nets import ARCHITECTURES, StegNet, build_net

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_TILE",
    "ACTIVATION_BUDGET",
    "FIT_MODES",
    "FORMAT",
    "FORMAT_VERSION",
    "PRETRAINED_DIR",
    "ModelError",
    "StegModel",
    "auto_tile",
    "default_margin",
    "export_checkpoint",
    "feature_channels",
    "fit_image",
    "load_model",
    "load_net",
    "receptive_radius",
    "resolve_model_path",
    "shipped_models",
    "square_image",
    "to_pil",
    "write_atomic",
]

#: Value of the ``format`` metadata key of an exported model file.
FORMAT = "steg-model"
#: Version of the exported model format written by this code (and the newest it reads).
FORMAT_VERSION = 1
#: Folder of the shipped models: ``NAME.safetensors``.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
#: Shipped model used when no model is given.
DEFAULT_MODEL = "default"
#: Default tiling: "auto" sizes tiles so that one tile's activations fit ACTIVATION_BUDGET.
DEFAULT_TILE = "auto"
#: Memory (bytes) the net's activations may take for one tile when tiles are sized automatically.
ACTIVATION_BUDGET = 768 * 2**20
#: Measured peak activation memory of one forward pass, in bytes per pixel per channel of
#: the widest full-resolution feature map (20-26 for the nets in steg.nets; rounded up).
BYTES_PER_PIXEL_CHANNEL = 28
#: Smallest automatic tile side.
MIN_AUTO_TILE = 64
#: How a secret of another size is fitted to the cover.
FIT_MODES = ("resize", "crop")
#: Unsharp mask used by ``reveal(sharpen=True)``.
SHARPEN_KERNEL = 5
SHARPEN_SIGMA = 1.0

_CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")
_EXPORT_SUFFIX = ".safetensors"

ImageInput = Union[Image.Image, torch.Tensor, str, os.PathLike]


class ModelError(ValueError):
    """A model that cannot be used: missing, not a model, corrupt, unknown architecture, mismatched weights."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _exc_line(exc: BaseException) -> str:
    text = _one_line(exc)
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------- #
# Files
# --------------------------------------------------------------------------- #


def write_atomic(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, then rename it to ``path``.

    A failure (or Ctrl-C) leaves neither a half-written ``path`` nor the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private (0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
        text = _one_line(exc)
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


def _build(arch: dict[str, Any], path: Path) -> StegNet:
    name = arch.get("name")
    if name not in ARCHITECTURES:
        raise ModelError(
            f"cannot load model {path}: unknown architecture {name!r}; "
            f"expected one of {', '.join(sorted(ARCHITECTURES))}"
        )
    kwargs = {k: v for k, v in arch.items() if k != "name"}
    try:
        return build_net(name, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelError(
            f"cannot load model {path}: invalid arch_config for {name!r} ({_exc_line(exc)})"
        ) from exc


def _load_weights(net: StegNet, state: dict[str, torch.Tensor], arch: dict[str, Any], path: Path) -> None:
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} of the wrong shape (e.g. {k}: {tuple(state[k].shape)} in the file, "
                f"{tuple(expected[k].shape)} expected)"
            )
        raise ModelError(
            f"cannot load model {path}: weights do not match its architecture {_arch_text(arch)}: "
            + ", ".join(parts)
        )
    try:
        net.load_state_dict(state, strict=True)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"cannot load model {path}: weights do not load ({_exc_line(exc)})") from exc


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
    net = _build(arch, path)
    _load_weights(net, state, arch, path)
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
    net = _build(arch, ckpt)
    _load_weights(net, state, arch, ckpt)
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

    return write_atomic(out, lambda tmp: save_file(tensors, tmp, metadata=meta))


# --------------------------------------------------------------------------- #
# Receptive field and tiling
# --------------------------------------------------------------------------- #


def _config_value(net: StegNet, key: str) -> Any:
    cfg = net.arch_config
    if key in cfg:
        return cfg[key]
    return inspect.signature(type(net)).parameters[key].default


def receptive_radius(net: StegNet) -> int | None:
    """How far (pixels) an output pixel of ``hide`` or ``reveal`` can see, or None if unknown.

    Every :class:`steg.nets.Branches` layer (kernels up to 5x5) reaches 2 pixels
    at its own scale; a Subpixel level ``l`` works at scale ``2**l``; an
    :class:`steg.nets.UnshuffleBody` reaches ``8 * depth + 3``.
    """
    name = net.arch_config.get("name", getattr(net, "name", None))
    if name == "baluja":
        layers = int(_config_value(net, "depth")) + 1  # per trunk: depth branch layers + mixing layer
        return 2 * 2 * layers  # prep trunk + hide trunk (reveal has one trunk)
    if name == "cnn":
        hide = int(_config_value(net, "prep_layers")) + int(_config_value(net, "hide_layers"))
        return 2 * max(hide, int(_config_value(net, "reveal_layers")))
    if name == "subpixel":
        levels = len(_config_value(net, "widths"))
        # Interval bound through SubpixelUNet: the encoder reaches e_0 = 2 and
        # e_l = e_(l-1) + 2**(l-1) (stride-2 conv) + 2 * 2**l (block); each way up
        # adds 2**l (3x3 conv before PixelShuffle) + 2**(l-1) (pixel-shuffle
        # rounding) + 2 * 2**(l-1) (block): 5 * 2**levels - 8 in all.
        unet = 5 * 2**levels - 8
        return unet + 2 * 2  # + the two prep blocks on the secret
    if name in ("unet", "qim"):
        # UnshuffleBody: depth 3x3 convs at 1/2 (2 px each), at 1/4 (4 px each) and at 1/2
        # again, plus 3 px of 4x4-block alignment: 8 * depth + 3 (measured in the tests).
        # The qim hide step itself is per pixel.
        return 8 * int(_config_value(net, "depth")) + 3
    return None


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def default_margin(net: StegNet) -> int:
    """Overlap margin for tiling: the receptive-field radius plus alignment slack, a multiple of size_multiple."""
    m = int(net.size_multiple)
    radius = receptive_radius(net)
    if radius is None:
        radius = 64
    return max(_round_up(radius + m, m), m)


def feature_channels(net: StegNet) -> float:
    """Channels of the widest feature map, counted at full resolution (a 1/2**l map counts 1/4**l).

    Activation memory per pixel is about ``BYTES_PER_PIXEL_CHANNEL`` times this.
    Unknown architectures: the widest input of any conv layer (an overestimate).
    """
    cfg = net.arch_config
    name = cfg.get("name", getattr(net, "name", None))
    channels = int(cfg.get("channels", 3))
    if name == "baluja":
        return channels + 3 * int(_config_value(net, "filters"))
    if name == "cnn":
        return channels + sum(int(w) for w in _config_value(net, "widths"))
    if name == "subpixel":
        widths = [int(w) for w in _config_value(net, "widths")]
        prep = 3 * int(_config_value(net, "prep_width"))
        # hide input; each level's decoder input (upsampled + skip) is 2 * 3 * width
        return max([channels + prep, prep] + [6 * w / 4**level for level, w in enumerate(widths)])
    convs = [m.in_channels + m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    return float(max(convs, default=64))


def auto_tile(net: StegNet, budget: int = ACTIVATION_BUDGET, margin: int | None = None) -> int:
    """Core tile side such that a tile with its margins needs about ``budget`` bytes of activations."""
    m = int(net.size_multiple)
    margin = default_margin(net) if margin is None else margin
    pixels = budget / (BYTES_PER_PIXEL_CHANNEL * feature_channels(net))
    side = int(math.sqrt(pixels)) - 2 * margin
    return max(_round_up(MIN_AUTO_TILE, m), side // m * m)


def _spans(length: int, tile: int, multiple: int) -> list[tuple[int, int]]:
    """Split [0, length) into near-equal spans of at most ``tile``, starts on multiples of ``multiple``."""
    count = max(1, math.ceil(length / tile))
    core = max(multiple, _round_up(math.ceil(length / count), multiple))
    return [(start, min(start + core, length)) for start in range(0, length, core)]


def _pad(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Pad the bottom and right of (B, C, H, W): reflect where possible, replicate for tiny images."""
    if pad_h == 0 and pad_w == 0:
        return x
    h, w = x.shape[-2:]
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


# --------------------------------------------------------------------------- #
# Image conversions
# --------------------------------------------------------------------------- #


def to_pil(x: torch.Tensor) -> Image.Image:
    """(C, H, W) float tensor in [0, 1] (clamped, rounded to 8 bits) -> 'RGB' or 'L' PIL image."""
    arr = x.detach().to("cpu", torch.float32).clamp(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
    if arr.shape[0] == 1:
        return Image.fromarray(arr[0].numpy(), mode="L")
    if arr.shape[0] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {arr.shape[0]}")
    return Image.fromarray(arr.permute(1, 2, 0).contiguous().numpy(), mode="RGB")


def fit_image(img: Image.Image, size: tuple[int, int], fit: str = "resize") -> Image.Image:
    """Fit a PIL image to ``size`` = (width, height).

    "resize": bicubic resize to exactly ``size`` (aspect ratio not kept).
    "crop": scale (bicubic) so that the image covers ``size`` keeping its aspect
    ratio, then take the centre.
    """
    if fit not in FIT_MODES:
        raise ValueError(f"fit must be one of {', '.join(FIT_MODES)}, got {fit!r}")
    w, h = size
    if img.size == (w, h):
        return img
    if fit == "resize":
        return img.resize((w, h), Image.BICUBIC)
    iw, ih = img.size
    scale = max(w / iw, h / ih)
    nw, nh = max(w, round(iw * scale)), max(h, round(ih * scale))
    if (nw, nh) != (iw, ih):
        img = img.resize((nw, nh), Image.BICUBIC)
    left, top = (nw - w) // 2, (nh - h) // 2
    return img.crop((left, top, left + w, top + h))


def square_image(img: Image.Image, side: int) -> Image.Image:
    """Resize so that the shorter side is ``side`` (bicubic), then centre-crop side x side."""
    return fit_image(img, (side, side), "crop")


def _fit_tensor(x: torch.Tensor, size: tuple[int, int], fit: str) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, H, W) with ``size`` = (H, W), like :func:`fit_image`."""
    if fit not in FIT_MODES:
        raise ValueError(f"fit must be one of {', '.join(FIT_MODES)}, got {fit!r}")
    h, w = size
    ih, iw = x.shape[-2:]
    if (ih, iw) == (h, w):
        return x
    if fit == "resize":
        return F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    scale = max(w / iw, h / ih)
    nh, nw = max(h, round(ih * scale)), max(w, round(iw * scale))
    x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    top, left = (nh - h) // 2, (nw - w) // 2
    return x[..., top : top + h, left : left + w]


def _channels_to(x: torch.Tensor, channels: int, what: str) -> torch.Tensor:
    """(B, c, H, W) -> (B, channels, H, W): grey replicated to RGB, RGB to ITU-R 601 luma."""
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    if c == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * weights).sum(dim=1, keepdim=True)
    raise ValueError(f"{what}: expected a tensor with 1 or 3 channels, got {c}")


class _Batch:
    """An input image as a (B, C, H, W) float tensor plus how to give results back in kind."""

    def __init__(self, value: ImageInput, channels: int, what: str):
        self.kind: str
        if isinstance(value, torch.Tensor):
            if not value.is_floating_point():
                raise TypeError(f"{what}: expected a float tensor in [0, 1], got dtype {value.dtype}")
            if value.dim() == 3:
                self.kind, t = "chw", value.unsqueeze(0)
            elif value.dim() == 4:
                self.kind, t = "bchw", value
            else:
                raise ValueError(f"{what}: expected a tensor of shape (C, H, W) or (B, C, H, W), got {tuple(value.shape)}")
            self.tensor = _channels_to(t.detach().to("cpu", torch.float32), channels, what)
            return
        from steg import data

        if isinstance(value, Image.Image):
            img = data._convert_mode(value, channels)
        elif isinstance(value, (str, os.PathLike)):
            img = data.load_image(value, channels)
        else:
            raise TypeError(f"{what}: expected a PIL image, a file path or a tensor, got {type(value).__name__}")
        self.kind = "pil"
        self.image = img
        self.tensor = data.to_tensor(img).unsqueeze(0)

    def give_back(self, out: torch.Tensor) -> Image.Image | torch.Tensor:
        if self.kind == "pil":
            return to_pil(out[0])
        if self.kind == "chw":
            return out[0]
        return out


# --------------------------------------------------------------------------- #
# The model wrapper
# --------------------------------------------------------------------------- #


class StegModel:
    """A hide/reveal net ready for inference at any image size.

    Args:
        net: the :class:`steg.nets.StegNet` (put in eval mode here).
        device: where the net runs ("cpu", "cuda", ...). Images stay on the CPU;
            tiles travel to the device.
        tile: side of the core region of one tile (rounded up to a multiple of
            ``net.size_multiple``); images whose padded size has at most
            (tile + 2 * margin)**2 pixels run in one piece. "auto" (default):
            sized by :func:`auto_tile` so that one tile's activations take about
            ``ACTIVATION_BUDGET`` bytes. None or 0: never tile.
        margin: overlap margin of the tiles; default: the nets' receptive-field
            radius plus alignment slack (:func:`default_margin`).
        info: where the weights came from (see :func:`load_net`).

    Attributes:
        net, channels, size_multiple, device, tile, margin, info.
    """

    def __init__(
        self,
        net: StegNet,
        device: str | torch.device = "cpu",
        tile: int | str | None = DEFAULT_TILE,
        margin: int | None = None,
        info: dict[str, Any] | None = None,
    ):
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.channels = int(net.arch_config.get("channels", 3))
        self.size_multiple = int(net.size_multiple)
        m = self.size_multiple
        if margin is None:
            margin = default_margin(net)
        elif isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
            raise ValueError(f"margin must be an int >= 0, got {margin!r}")
        self.margin = _round_up(margin, m)
        if tile == "auto":
            tile = auto_tile(net, margin=self.margin)
        elif tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 0):
            raise ValueError(f"tile must be 'auto', None or an int >= 0, got {tile!r}")
        self.tile = _round_up(tile, m) if tile else None
        self.info = dict(info or {})
        self.calls = 0  # net invocations (tiles) so far; handy to check that tiling happened

    # -- description -------------------------------------------------------------
    @property
    def source(self) -> str | None:
        return self.info.get("source")

    def describe(self) -> str:
        """One line: architecture, channels, parameter count and where the weights came from."""
        cfg = self.net.arch_config
        args = ", ".join(f"{k}={v}" for k, v in cfg.items() if k not in ("name", "channels", "noise_std"))
        params = sum(p.numel() for p in self.net.parameters())
        text = (
            f"{cfg.get('name', type(self.net).__name__)} ({'RGB' if self.channels == 3 else 'grayscale'}; "
            f"{args}; {params:,} parameters)"
        )
        if self.source:
            text += f" from {self.source}"
        extra = []
        if self.info.get("source_checkpoint"):
            extra.append(f"exported from {self.info['source_checkpoint']}")
        for key in ("epoch", "global_step"):
            if self.info.get(key) not in (None, ""):
                extra.append(f"{key.replace('global_', '')} {self.info[key]}")
        if extra:
            text += f" ({', '.join(extra)})"
        return text

    def __repr__(self) -> str:
        return f"StegModel({self.describe()}, device={self.device}, tile={self.tile}, margin={self.margin})"

    # -- core: padded, tiled application of a net function ------------------------
    def _apply(self, fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Run ``fn`` on (1, C, H, W) CPU tensors of equal size; returns (1, C', H, W) on the CPU."""
        m = self.size_multiple
        h, w = inputs[0].shape[-2:]
        pad_h, pad_w = (-h) % m, (-w) % m
        padded = [_pad(x, pad_h, pad_w) for x in inputs]
        hp, wp = h + pad_h, w + pad_w
        dtype = next(self.net.parameters()).dtype

        def run(parts: list[torch.Tensor]) -> torch.Tensor:
            self.calls += 1
            return fn(*[p.to(self.device, dtype) for p in parts]).to("cpu", torch.float32)

        budget = None if not self.tile else (self.tile + 2 * self.margin) ** 2
        with torch.inference_mode():
            if budget is None or hp * wp <= budget:
                out = run(list(padded))
            else:
                out = None
                for y0, y1 in _spans(hp, self.tile, m):
                    ey0, ey1 = max(0, y0 - self.margin), min(hp, y1 + self.margin)
                    for x0, x1 in _spans(wp, self.tile, m):
                        ex0, ex1 = max(0, x0 - self.margin), min(wp, x1 + self.margin)
                        res = run([x[..., ey0:ey1, ex0:ex1] for x in padded])
                        if out is None:
                            out = torch.empty((res.shape[0], res.shape[1], hp, wp), dtype=torch.float32)
                        out[..., y0:y1, x0:x1] = res[..., y0 - ey0 : y1 - ey0, x0 - ex0 : x1 - ex0]
                assert out is not None
            if pad_h or pad_w:
                out = out[..., :h, :w].contiguous()
        return out

    # -- tensor API (raw net outputs) ------------------------------------------------
    def hide_tensor(self, cover: torch.Tensor, secret: torch.Tensor) -> torch.Tensor:
        """Raw (unclamped) stego images: (B, C, H, W) x2 of equal shape -> (B, C, H, W) float32 CPU."""
        if cover.shape != secret.shape:
            raise ValueError(f"cover {tuple(cover.shape)} and secret {tuple(secret.shape)} must have the same shape")
        outs = [self._apply(self.net.hide, [cover[i : i + 1], secret[i : i + 1]]) for i in range(cover.shape[0])]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def reveal_tensor(self, stego: torch.Tensor) -> torch.Tensor:
        """Raw (unclamped) revealed secrets: (B, C, H, W) -> (B, C, H, W) float32 CPU."""
        outs = [self._apply(self.net.reveal, [stego[i : i + 1]]) for i in range(stego.shape[0])]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    # -- user API ---------------------------------------------------------------------
    def hide(
        self, cover: ImageInput, secret: ImageInput, fit: str = "resize", quantize: bool = True
    ) -> Image.Image | torch.Tensor:
        """Hide ``secret`` in ``cover``; the result has the cover's size and kind.

        Args:
            cover, secret: PIL images, image file paths, or float tensors in
                [0, 1] of shape (C, H, W) or (B, C, H, W). Converted to the
                model's channels (grey <-> RGB). The secret is fitted to the
                cover's size (``fit``: "resize" or "crop", see :func:`fit_image`).
            quantize: for tensor results, clamp to [0, 1] and round to 8 bits
                (what a saved PNG holds); False gives the raw net output.
                PIL results are always 8-bit.

        Returns:
            A PIL image ('RGB' or 'L') for a PIL/path cover, else a tensor
            shaped like the cover (with the model's channels).
        """
        c = _Batch(cover, self.channels, "cover")
        s = _Batch(secret, self.channels, "secret")
        ct, st = c.tensor, s.tensor
        if st.shape[-2:] != ct.shape[-2:]:
            if s.kind == "pil":
                st = self._fit_pil(s, ct.shape[-2:], fit)
            else:
                st = _fit_tensor(st, tuple(ct.shape[-2:]), fit)
        if st.shape[0] != ct.shape[0]:
            if st.shape[0] != 1:
                raise ValueError(f"secret batch size {st.shape[0]} does not match the cover's {ct.shape[0]}")
            st = st.expand(ct.shape[0], -1, -1, -1)
        out = self.hide_tensor(ct, st)
        if quantize or c.kind == "pil":
            out = _quantize(out)
        return c.give_back(out)

    def _fit_pil(self, s: _Batch, size_hw: Sequence[int], fit: str) -> torch.Tensor:
        from steg import data

        img = fit_image(s.image, (int(size_hw[1]), int(size_hw[0])), fit)
        return data.to_tensor(img).unsqueeze(0)

    def reveal(
        self, stego: ImageInput, sharpen: bool = False, quantize: bool = True
    ) -> Image.Image | torch.Tensor:
        """Recover the secret from ``stego`` (PIL image, path or tensor); same size and kind.

        Args:
            sharpen: post-process with an unsharp mask (kornia, 5x5, sigma 1)
                on the clamped revealed image.
            quantize: for tensor results, clamp and round to 8 bits; False gives
                the raw net output (with ``sharpen``: clamped, not rounded).
        """
        s = _Batch(stego, self.channels, "stego")
        out = self.reveal_tensor(s.tensor)
        if sharpen:
            out = sharpen_image(out)
        if quantize or s.kind == "pil":
            out = _quantize(out)
        return s.give_back(out)


def _quantize(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to 8 bits, in place where possible (same as steg.metrics.quantize)."""
    return x.clamp(0.0, 1.0).mul_(255.0).round_().div_(255.0)


def sharpen_image(x: torch.Tensor, rows_per_strip: int | None = None) -> torch.Tensor:
    """Unsharp mask (kornia, kernel 5, sigma 1.0) of the clamped (B, C, H, W) image, clamped to [0, 1].

    Large images are filtered in horizontal strips (with the kernel's 2-row halo,
    so the result is the same) to keep memory bounded.
    """
    from kornia.filters import unsharp_mask

    halo = SHARPEN_KERNEL // 2
    h, w = x.shape[-2:]
    if rows_per_strip is None:
        rows_per_strip = max(16, (1 << 20) // max(w, 1))
    out = torch.empty_like(x, dtype=torch.float32)
    with torch.inference_mode():
        for y0 in range(0, h, rows_per_strip):
            y1 = min(h, y0 + rows_per_strip)
            e0, e1 = max(0, y0 - halo), min(h, y1 + halo)
            part = x[..., e0:e1, :].float().clamp(0.0, 1.0)
            # reflect padding needs more rows than the halo; tiny strips fall back to replicate
            border = "reflect" if part.shape[-2] > halo and part.shape[-1] > halo else "replicate"
            sharp = unsharp_mask(part, (SHARPEN_KERNEL, SHARPEN_KERNEL), (SHARPEN_SIGMA, SHARPEN_SIGMA),
                                 border_type=border)
            out[..., y0:y1, :] = sharp[..., y0 - e0 : y1 - e0, :].clamp_(0.0, 1.0)
    return out


def load_model(
    model: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    tile: int | str | None = DEFAULT_TILE,
    margin: int | None = None,
) -> StegModel:
    """Load a model for inference: a .ckpt, an exported .safetensors, or a shipped model name.

    Args:
        model: path or shipped name; None means the shipped model ``"default"``
            (``steg/pretrained/default.safetensors``).
        device: where the net runs.
        tile, margin: tiling (see :class:`StegModel`).

    Raises:
        ModelError: one line naming the file (see :func:`load_net`).
    """
    net, info = load_net(model)
    return StegModel(net, device=device, tile=tile, margin=margin, info=info)
