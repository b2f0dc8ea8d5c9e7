"""Real distortions of saved stego images, for evaluation: ``steg eval --attack jpeg:90,webp:80,...``.

Where :mod:`steg.distortions.layers` holds differentiable stand-ins for training, this
module applies what a stego image meets on its way to the reader, with real
codecs, to the 8-bit image (a PIL image) that ``steg hide`` saves:

=================  ===========================================================
spec               attack
=================  ===========================================================
``jpeg:Q``         Pillow's JPEG encoder at quality Q (1-100), decoded back
``webp:Q``         Pillow's WebP encoder at quality Q (0-100, lossy), decoded back
``noise:SIGMA``    Gaussian noise of std SIGMA levels (0-255), seeded, rounded to 8 bits
``resize:SCALE``   down to SCALE (0-1] of the size and back up, Pillow bicubic both ways
``blur:RADIUS``    Pillow's ``GaussianBlur(RADIUS)`` (RADIUS: the std in pixels)
``crop:FRACTION``  keep the central FRACTION (0-1] of each side; the reveal net sees the crop
                   and the revealed image is compared with the same window of the secret
=================  ===========================================================

:func:`attack_pair` measures, for one pair, PSNR/SSIM of the secret revealed
from each attacked stego image, beside the clean figures (the row ``clean``),
with ``torchmetrics.functional``. The loop over pairs is
:func:`steg.inference.evaluation.evaluate` (``steg eval --attack``);
:func:`steg.inference.evaluation.evaluate_attacks` is that loop's attack figures alone.
:func:`attack_grid` draws one row per attack.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Union

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from steg.distortions.layers import Box, crop as crop_tensor
from steg.io import to_pil, to_tensor
from steg.metrics import psnr, ssim_per_image
from steg.quantize import quantize

__all__ = [
    "AttackError",
    "Attack",
    "Attacked",
    "ATTACK_FORMS",
    "CLEAN",
    "parse_attack",
    "parse_attacks",
    "encode",
    "apply_attack",
    "attack_pair",
    "summarize",
    "attack_table",
    "attack_grid",
]

#: Name of the row measured without any attack.
CLEAN = "clean"
#: kind -> (the spec's form, what its value must be)
ATTACK_FORMS: dict[str, tuple[str, str]] = {
    "jpeg": ("jpeg:Q", "an integer quality 1-100"),
    "webp": ("webp:Q", "an integer quality 0-100"),
    "noise": ("noise:SIGMA", "a std in 8-bit levels >= 0"),
    "resize": ("resize:SCALE", "a scale in (0, 1]"),
    "blur": ("blur:RADIUS", "a radius in pixels > 0"),
    "crop": ("crop:FRACTION", "a fraction of each side in (0, 1]"),
}
_CHECKS = {
    "jpeg": lambda v: v == int(v) and 1 <= v <= 100,
    "webp": lambda v: v == int(v) and 0 <= v <= 100,
    "noise": lambda v: v >= 0,
    "resize": lambda v: 0 < v <= 1,
    "blur": lambda v: v > 0,
    "crop": lambda v: 0 < v <= 1,
}
_EXAMPLE = "jpeg:90,jpeg:75,webp:80,noise:2,resize:0.5,blur:1,crop:0.9"

ImageLike = Union[Image.Image, torch.Tensor]


class AttackError(ValueError):
    """A malformed attack spec (one line naming the spec and the expected form)."""


@dataclass(frozen=True)
class Attack:
    """One real distortion: ``kind`` (a key of :data:`ATTACK_FORMS`) and its ``value``."""

    kind: str
    value: float

    @property
    def spec(self) -> str:
        """The spec as written back: ``jpeg:90``, ``resize:0.5``."""
        return f"{self.kind}:{self.value:g}"

    def __call__(self, img: Image.Image, rng: np.random.Generator | None = None) -> "Attacked":
        return apply_attack(img, self, rng)


class Attacked(NamedTuple):
    """An attacked 8-bit image and the window of the original it shows (``None``: all of it)."""

    image: Image.Image
    box: Box | None = None  # (top, left, height, width), as in steg.distortions.layers

    def window(self, x: ImageLike) -> ImageLike:
        """``x`` (a PIL image or a (..., H, W) tensor of the original's size) cut to the same window."""
        if self.box is None:
            return x
        if isinstance(x, Image.Image):
            top, left, h, w = self.box
            return x.crop((left, top, left + w, top + h))
        return crop_tensor(x, self.box)


# --------------------------------------------------------------------------- #
# Parsing
# --------------------------------------------------------------------------- #


def parse_attack(spec: str) -> Attack:
    """``"jpeg:90"`` -> ``Attack("jpeg", 90.0)``; :class:`AttackError` (one line) when malformed."""
    text = spec.strip()
    kind, sep, value_text = text.partition(":")
    kind = kind.strip().lower()
    if kind not in ATTACK_FORMS:
        forms = ", ".join(form for form, _ in ATTACK_FORMS.values())
        raise AttackError(f"attack {text!r}: unknown kind {kind!r}; expected one of {forms} (e.g. {_EXAMPLE})")
    form, what = ATTACK_FORMS[kind]
    try:
        value = float(value_text) if sep else None
    except ValueError:
        value = None
    if value is None or not np.isfinite(value) or not _CHECKS[kind](value):
        raise AttackError(f"attack {text!r}: expected {form} with {what}")
    return Attack(kind, value)


def parse_attacks(text: str | Sequence[str]) -> list[Attack]:
    """Comma-separated specs (or a list of them) -> attacks in order, duplicates dropped."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    if not [p for p in parts if p.strip()]:
        raise AttackError(f"attack list {text!r} is empty; expected comma-separated specs such as {_EXAMPLE}")
    attacks: list[Attack] = []
    for part in parts:
        if not part.strip():
            raise AttackError(f"attack list {text!r} has an empty entry; expected comma-separated specs such as {_EXAMPLE}")
        attack = parse_attack(part)
        if attack not in attacks:
            attacks.append(attack)
    return attacks


# --------------------------------------------------------------------------- #
# Applying
# --------------------------------------------------------------------------- #


def encode(img: Image.Image, fmt: str, quality: int) -> bytes:
    """The bytes of ``img`` encoded by Pillow as ``fmt`` ("JPEG" or "WEBP", lossy) at ``quality``."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, quality=int(quality))
    return buf.getvalue()


def _decode(data: bytes, mode: str) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.convert(mode)


def apply_attack(img: Image.Image, attack: Attack | str, rng: np.random.Generator | None = None) -> Attacked:
    """Apply one real distortion to an 8-bit 'RGB' or 'L' image.

    Args:
        img: the stego image as saved (PIL, 'RGB' or 'L').
        attack: an :class:`Attack` or a spec string such as ``"jpeg:90"``.
        rng: the noise generator (``noise`` only); default ``np.random.default_rng(0)``.

    Returns:
        :class:`Attacked`: the attacked image (same mode; same size except ``crop``)
        and, for ``crop``, the window of the original it shows.
    """
    if isinstance(attack, str):
        attack = parse_attack(attack)
    if img.mode not in ("RGB", "L"):
        raise ValueError(f"attacks apply to 'RGB' or 'L' images, got mode {img.mode!r}")
    kind, v = attack.kind, attack.value
    w, h = img.size
    if kind in ("jpeg", "webp"):
        return Attacked(_decode(encode(img, kind.upper(), int(v)), img.mode))
    if kind == "noise":
        rng = rng if rng is not None else np.random.default_rng(0)
        arr = np.asarray(img, dtype=np.float64)
        noisy = np.clip(np.rint(arr + rng.normal(0.0, v, arr.shape)), 0, 255).astype(np.uint8)
        return Attacked(Image.fromarray(noisy, mode=img.mode))
    if kind == "resize":
        small = img.resize((max(1, round(w * v)), max(1, round(h * v))), Image.Resampling.BICUBIC)
        return Attacked(small.resize((w, h), Image.Resampling.BICUBIC))
    if kind == "blur":
        return Attacked(img.filter(ImageFilter.GaussianBlur(v)))
    if kind == "crop":
        ch, cw = max(1, round(h * v)), max(1, round(w * v))
        top, left = (h - ch) // 2, (w - cw) // 2
        return Attacked(img.crop((left, top, left + cw, top + ch)), (top, left, ch, cw))
    raise AttackError(f"attack {attack.spec!r}: unknown kind")  # parse_attack rules this out


# --------------------------------------------------------------------------- #
# Measuring
# --------------------------------------------------------------------------- #


def _to_tensor(img: Image.Image) -> torch.Tensor:
    return to_tensor(img).unsqueeze(0)


def attack_pair(
    model,
    cover: torch.Tensor,
    secret: torch.Tensor,
    attacks: Sequence[Attack],
    rng: np.random.Generator | None = None,
    stego: torch.Tensor | None = None,
    keep_images: bool = False,
    key: Any = None,
) -> list[dict[str, Any]]:
    """Hide ``secret`` in ``cover``, attack the 8-bit stego image each way, reveal, measure.

    Args:
        model: a :class:`steg.inference.model.StegModel`.
        cover, secret: (1, C, H, W) in [0, 1] with the model's channels.
        attacks: what to apply; the row ``clean`` (no attack) always comes first.
        rng: noise generator (default ``np.random.default_rng(0)``).
        stego: the 8-bit stego image if already computed, (1, C, H, W).
        keep_images: add the attacked stego, revealed and secret window (C, h, w) to each row
            (for :func:`attack_grid`).
        key: hide and reveal with this key (keyed models; see :meth:`steg.inference.model.StegModel.hide`).

    Returns:
        One dict per attack: ``attack`` (spec), ``psnr_secret``/``ssim_secret`` (revealed vs
        the secret, in the attack's window), ``psnr_stego`` (the attacked stego image vs the
        cover's window: how far what the reader gets is from the cover).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    if stego is None:
        stego = quantize(model.hide_tensor(cover, secret, key=key))
    stego_img = to_pil(stego[0])
    rows = []
    for attack in [None, *attacks]:
        attacked = Attacked(stego_img) if attack is None else apply_attack(stego_img, attack, rng)
        seen = _to_tensor(attacked.image)
        revealed = quantize(model.reveal_tensor(seen, key=key))
        target, cover_window = attacked.window(secret), attacked.window(cover)
        row: dict[str, Any] = {
            "attack": CLEAN if attack is None else attack.spec,
            "psnr_secret": psnr(revealed, target),
            "ssim_secret": float(ssim_per_image(revealed, target).mean()),
            "psnr_stego": psnr(seen, cover_window),
        }
        if keep_images:
            row.update(attacked=seen[0], revealed=revealed[0], secret=target[0])
        rows.append(row)
    return rows


_SUMMARY_KEYS = ("psnr_secret", "ssim_secret", "psnr_stego")


def summarize(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per-pair rows -> ``{attack: {"psnr_secret": mean, "ssim_secret": mean, "psnr_stego": mean, "n": pairs}}``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["attack"], []).append(row)
    summary = {}
    for name, group in groups.items():
        summary[name] = {k: float(np.mean([r[k] for r in group])) for k in _SUMMARY_KEYS}
        summary[name]["n"] = len(group)
    return summary


def attack_table(summary: dict[str, dict[str, float]]) -> str:
    """The summary as a text table, one line per attack, with the change from clean."""
    clean = summary.get(CLEAN, {}).get("psnr_secret")
    lines = [f"{'attack':14s}{'revealed PSNR':>15s}{'vs clean':>10s}{'SSIM':>8s}{'attacked stego PSNR':>21s}"]
    for name, s in summary.items():
        delta = "" if clean is None or name == CLEAN else f"{s['psnr_secret'] - clean:+.2f}"
        lines.append(f"{name:14s}{s['psnr_secret']:>12.2f} dB{delta:>10s}{s['ssim_secret']:>8.4f}{s['psnr_stego']:>18.2f} dB")
    return "\n".join(lines)


def attack_grid(rows: Sequence[dict[str, Any]], tile: int = 256) -> Image.Image:
    """One row per attack (rows from :func:`attack_pair` with ``keep_images=True``):
    attacked stego | revealed | secret (the attack's window), labelled with the spec and PSNR."""
    label_w, pad, header = 150, 4, 18
    cells = []
    for row in rows:
        imgs = [to_pil(row[k]).convert("RGB") for k in ("attacked", "revealed", "secret")]
        for im in imgs:
            im.thumbnail((tile, tile), Image.Resampling.LANCZOS)
        cells.append(imgs)
    cw = max(im.width for imgs in cells for im in imgs)
    ch = max(im.height for imgs in cells for im in imgs)
    canvas = Image.new("RGB", (label_w + 3 * (cw + pad) + pad, header + len(cells) * (ch + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for j, title in enumerate(("attacked stego", "revealed", "secret (same window)")):
        draw.text((label_w + pad + j * (cw + pad), 3), title, fill="black")
    for i, (row, imgs) in enumerate(zip(rows, cells)):
        y = header + pad + i * (ch + pad)
        draw.text((4, y + 4), row["attack"], fill="black")
        draw.text((4, y + 20), f"{row['psnr_secret']:.2f} dB", fill="black")
        draw.text((4, y + 36), f"SSIM {row['ssim_secret']:.3f}", fill="black")
        for j, im in enumerate(imgs):
            canvas.paste(im, (label_w + pad + j * (cw + pad), y))
    return canvas
