"""Source coding of the secret: a real image codec, at the best setting that fits the channel.

Codecs (id, name, what the one-byte parameter means):

====  ================  ==============================================================
id    name              parameter
====  ================  ==============================================================
0     ``raw``           unused: the payload is the caller's bytes (no image)
1     ``webp``          lossy WebP quality 0-100 (Pillow/libwebp, method 6)
2     ``webp-lossless`` quantisation step s in {1, 2, 4, 8}: values v // s, lossless
                        WebP (method 4); decoded as s * k + s // 2 (s = 1: bit-exact)
3     ``avif``          AVIF quality 0-100, 4:4:4 (only where ``PIL.features.check('avif')``)
====  ================  ==============================================================

A lossy file may hold a smaller copy of the secret (``coded_size``); the decoded
image is resized back to the secret's size (bicubic). :func:`fit_codec` picks,
among a ladder of candidates, the best-looking file (PSNR against the secret)
that fits a byte budget. Images are (H, W, 3) uint8 numpy arrays.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, features

__all__ = [
    "CODECS", "CODEC_IDS", "NEAR_LOSSLESS_STEPS", "SCALES", "Encoded", "CodecError",
    "available_codecs", "codec_id", "encode", "decode", "fit_codec", "psnr8",
]

CODECS = {0: "raw", 1: "webp", 2: "webp-lossless", 3: "avif"}
CODEC_IDS = {name: i for i, name in CODECS.items()}
#: Steps of the near-lossless ladder (1: exact).
NEAR_LOSSLESS_STEPS = (1, 2, 4, 8)
#: Scales tried for lossy files when the full-size file does not fit well.
SCALES = (1.0, 0.75, 0.5, 0.35, 0.25)
#: A lossless file at least this good (dB) is kept without trying lossy codecs.
GOOD_ENOUGH_DB = 50.0
#: Smallest coded side in pixels.
MIN_SIDE = 8


class CodecError(ValueError):
    """A codec that is unknown or unavailable, or a secret that fits at no setting.

    Attributes:
        smallest: bytes of the smallest file tried (None unless nothing fits).
    """

    def __init__(self, message: str, smallest: int | None = None):
        super().__init__(message)
        self.smallest = smallest


def available_codecs() -> list[str]:
    """Image codec names Pillow can write here (``avif`` only with Pillow's AVIF plugin)."""
    out = ["webp", "webp-lossless"]
    if features.check("avif"):
        out.append("avif")
    return out


@dataclass(frozen=True)
class Encoded:
    """A coded secret: codec id/param, the coded image size (W, H), the file bytes and its PSNR (8-bit)."""

    codec: int
    param: int
    coded_size: tuple[int, int]
    data: bytes
    psnr: float

    @property
    def name(self) -> str:
        return CODECS[self.codec]


def psnr8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images of equal shape (inf when equal).

    The same figure as :func:`steg.metrics.psnr_per_image` for one image; written in numpy here
    because the codec search runs inside ``steg hide``, which must not import torchmetrics
    (``tests/test_cli.py::test_hide_and_reveal_never_import_lightning_hydra_or_torchmetrics``).
    """
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (img.shape[1], img.shape[0]) == tuple(size):
        return img
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BICUBIC))


def encode(img: np.ndarray, codec: int | str, param: int, coded_size: tuple[int, int] | None = None) -> bytes:
    """File bytes of ``img`` (H, W, 3) uint8 with ``codec`` at ``param``, resized to ``coded_size`` (W, H) first."""
    codec = codec_id(codec)
    if coded_size is not None:
        img = _resize(img, coded_size)
    buf = io.BytesIO()
    if codec == 1:
        Image.fromarray(img).save(buf, "WEBP", quality=int(param), method=6)
    elif codec == 2:
        step = int(param)
        if step not in NEAR_LOSSLESS_STEPS:
            raise CodecError(f"webp-lossless: step must be one of {NEAR_LOSSLESS_STEPS}, got {step}")
        Image.fromarray((img // step).astype(np.uint8)).save(buf, "WEBP", lossless=True, quality=50, method=4)
    elif codec == 3:
        if not features.check("avif"):
            raise CodecError("avif: this Pillow has no AVIF support; use webp or webp-lossless")
        Image.fromarray(img).save(buf, "AVIF", quality=int(param), subsampling="4:4:4", speed=6)
    else:
        raise CodecError(f"codec {CODECS.get(codec, codec)} does not code images")
    return buf.getvalue()


def decode(data: bytes, codec: int | str, param: int, size: tuple[int, int]) -> np.ndarray:
    """The image (H, W, 3) uint8 at ``size`` (W, H) from file bytes written by :func:`encode`.

    Raises:
        CodecError: the bytes are not a file of that codec.
    """
    codec = codec_id(codec)
    try:
        with Image.open(io.BytesIO(data)) as f:
            img = np.asarray(f.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 - any decoder failure is one line
        raise CodecError(f"the hidden {CODECS.get(codec, codec)} file does not decode ({exc})") from None
    if codec == 2:
        step = int(param)
        img = np.minimum(img.astype(np.int32) * step + step // 2, 255).astype(np.uint8)
    return _resize(img, size)


def codec_id(codec: int | str) -> int:
    """Codec id of a name or id (one-line error for an unknown one)."""
    if isinstance(codec, str):
        if codec not in CODEC_IDS:
            raise CodecError(f"unknown codec {codec!r}; expected one of {', '.join(available_codecs())}")
        return CODEC_IDS[codec]
    if int(codec) not in CODECS:
        raise CodecError(f"unknown codec id {codec}")
    return int(codec)


def _scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return (max(MIN_SIDE, round(size[0] * scale)), max(MIN_SIDE, round(size[1] * scale)))


def _best_quality(img: np.ndarray, codec: int, size: tuple[int, int], budget: int,
                  lowest: int = 0) -> tuple[int, bytes] | None:
    """Highest quality in [lowest, 100] whose file fits ``budget`` bytes (binary search), or None."""
    lo, hi, best = lowest, 100, None
    while lo <= hi:
        q = (lo + hi) // 2
        data = encode(img, codec, q, size)
        if len(data) <= budget:
            best, lo = (q, data), q + 1
        else:
            hi = q - 1
    return best


def fit_codec(secret: np.ndarray, budget: int, codecs: Sequence[str] = ("webp-lossless", "webp"),
              quality: int | None = None, steps: Sequence[int] = NEAR_LOSSLESS_STEPS,
              scales: Sequence[float] = SCALES) -> Encoded:
    """The best file of ``secret`` (H, W, 3) uint8 that fits ``budget`` bytes.

    Candidates, in ``codecs`` order: ``webp-lossless`` tries the steps in order and
    takes the first that fits (exact first); lossy codecs search the quality
    (``quality`` fixes it) at each of ``scales`` (smaller copies only while the
    full-size file needs a quality under 75). The file with the best PSNR against
    the secret wins; lossy codecs are skipped when a lossless file of at least
    :data:`GOOD_ENOUGH_DB` fits.

    Raises:
        CodecError: nothing fits (the message says how many bytes the smallest try took).
    """
    h, w = secret.shape[:2]
    size = (w, h)
    best: Encoded | None = None
    smallest = None

    def keep(enc: Encoded) -> None:
        nonlocal best
        if best is None or enc.psnr > best.psnr:
            best = enc

    for name in codecs:
        codec = codec_id(name)
        if codec == 2:
            for step in steps:  # the first step that fits is the best lossless file
                data = encode(secret, 2, step)
                smallest = len(data) if smallest is None else min(smallest, len(data))
                if len(data) <= budget:
                    keep(Encoded(2, step, size, data, psnr8(decode(data, 2, step, size), secret)))
                    break
            continue
        if best is not None and best.psnr >= GOOD_ENOUGH_DB:
            break  # near-lossless already: no lossy file comes close
        for scale in scales:
            coded = _scaled(size, scale)
            if quality is None:
                found = _best_quality(secret, codec, coded, budget)
            else:
                data = encode(secret, codec, quality, coded)
                found = (quality, data) if len(data) <= budget else None
                smallest = len(data) if smallest is None else min(smallest, len(data))
            if found is None:
                if quality is None:
                    tiny = len(encode(secret, codec, 0, coded))
                    smallest = tiny if smallest is None else min(smallest, tiny)
                continue
            q, data = found
            keep(Encoded(codec, q, coded, data, psnr8(decode(data, codec, q, size), secret)))
            if scale == 1.0 and q >= 75:
                break  # a good full-size file: smaller copies cannot beat it
    if best is None:
        raise CodecError(f"the secret does not fit: the channel holds {budget} bytes, the smallest file tried "
                         f"takes {smallest} bytes", smallest=smallest)
    return best
