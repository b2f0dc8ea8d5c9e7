"""Evaluate a model on image pairs: PSNR, SSIM and pixel error of stego and revealed images, 8-bit.

:func:`evaluate` is what ``steg eval`` prints and writes, what ``steg.bench``
reports, and what the tests measure the shipped model with::

    from steg import load_model
    from steg.inference.evaluation import evaluate, folder_pairs

    result = evaluate(load_model(), folder_pairs("photos/"), size=256)
    result.summary["psnr_secret"]            # mean over pairs, dB

Each pair is hidden and revealed exactly as ``steg hide`` / ``steg reveal`` do:
the stego image is quantized to 8 bits (what a PNG holds) before it is measured
and before the reveal net sees it, and the revealed image is quantized too.

With ``attacks`` (see :func:`steg.distortions.attacks.parse_attacks`), the same 8-bit stego
image is also distorted by each real attack and revealed again
(:func:`steg.distortions.attacks.attack_pair`); ``result.attack_summary`` holds the
per-attack means (``steg eval --attack``). This is the one loop over pairs:
:func:`evaluate_attacks` keeps only its attack figures.
"""

from __future__ import annotations

import math
import statistics
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, Union

import torch
import torch.nn.functional as F

from PIL import Image

from steg.distortions.attacks import Attack, attack_grid, attack_table, parse_attacks
from steg.io import IMAGE_EXTENSIONS, ImageError, check_images, find_images, fit_image, load_image, square_image, to_tensor
from steg.metrics import METRIC_NAMES, PAIRS, SUMMARY_METRICS, ci95, pair_metrics
from steg.quantize import quantize

__all__ = ["EvalError", "EvalResult", "evaluate", "evaluate_attacks", "AttackReport", "folder_pairs", "MIN_SIDE", "GRID_TILE"]

#: Smallest image side SSIM's 11x11 window (with its border) can measure; smaller pairs are skipped.
MIN_SIDE = 6
#: Side of the thumbnails kept for the grid when images are larger than twice this.
GRID_TILE = 128
#: The two error histograms: |stego - cover| and |revealed - secret| on 0..255.
HISTOGRAMS = {"stego": "stego vs cover", "secret": "revealed vs secret"}


class EvalError(ValueError):
    """Evaluation impossible: no images, too few, or no pair could be measured."""


@dataclass
class EvalResult:
    """What :func:`evaluate` measured.

    ``rows``: one dict per pair (paths, size, ``psnr_stego``, ...); ``summary``:
    mean and ``*_median`` of every metric in :data:`steg.metrics.SUMMARY_METRICS`;
    ``counts``: pixel-error histograms (256 bins each, keys of ``HISTOGRAMS``'s
    values); ``thumbnails``: the first pairs' cover, secret, stego, revealed
    (C, h, w) tensors for a grid; ``skipped``: one line per pair left out.
    With attacks: ``attack_rows`` (one dict per pair and attack, ``clean``
    first, ``pair`` the pair's index in the input, see
    :func:`steg.distortions.attacks.attack_pair`), ``attack_summary``
    (:func:`steg.distortions.attacks.summarize`), ``attack_images`` (the first pair's rows
    with their (C, h, w) images, for :func:`steg.distortions.attacks.attack_grid`, when
    ``thumbnails`` > 0).
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, float] = field(default_factory=dict)
    counts: dict[str, torch.Tensor] = field(default_factory=dict)
    thumbnails: list[dict[str, torch.Tensor]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    attack_rows: list[dict[str, Any]] = field(default_factory=list)
    attack_summary: dict[str, dict[str, float]] = field(default_factory=dict)
    attack_images: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.rows)


def folder_pairs(covers: str | Path, secrets: str | Path | None = None,
                 skipped: list[str] | None = None) -> list[tuple[Path, Path]]:
    """(cover, secret) paths: one folder (image i hides image i+1) or two folders zipped in sorted order.

    One folder: unreadable images (:func:`steg.io.check_images`) are left out
    before pairing, so that one bad file costs one pair, not two; each is
    warned about in one line and appended to ``skipped``.

    Raises:
        EvalError: one line naming the folder, if it is missing, not a folder,
            holds no images, or (one folder) fewer than 2.
    """

    def images(folder: Path, option: str) -> list[Path]:
        if not folder.exists():
            raise EvalError(f"{option} {folder} not found (expected a folder of images)")
        if not folder.is_dir():
            raise EvalError(f"{option} {folder} is not a folder (expected a folder of images)")
        found = find_images(folder)
        if not found:
            raise EvalError(f"{option} {folder} holds no images ({'/'.join(IMAGE_EXTENSIONS)}, searched recursively)")
        return found

    covers = Path(covers)
    cover_paths = images(covers, "--covers")
    if secrets is None:
        if len(cover_paths) < 2:
            raise EvalError(
                f"--covers {covers} holds {len(cover_paths)} image; at least 2 are needed "
                "(image i hides image i+1), or give --secrets DIR"
            )
        cover_paths, bad = check_images(cover_paths)
        for path in bad:
            line = f"{path}: unreadable or corrupt image, left out of the pairing"
            if skipped is not None:
                skipped.append(line)
            _warn(f"skipping {line}")
        if len(cover_paths) < 2:
            raise EvalError(f"--covers {covers} holds {len(cover_paths)} readable image(s); at least 2 are needed "
                            "(image i hides image i+1), or give --secrets DIR")
        return [(cover_paths[i], cover_paths[(i + 1) % len(cover_paths)]) for i in range(len(cover_paths))]
    return list(zip(cover_paths, images(Path(secrets), "--secrets")))


def _thumbnail(x: torch.Tensor) -> torch.Tensor:
    """(C, H, W) kept up to 2 * GRID_TILE a side, else resized to GRID_TILE x GRID_TILE (bounded memory)."""
    if max(x.shape[-2:]) <= 2 * GRID_TILE:
        return x.clone()
    return F.interpolate(x[None], size=(GRID_TILE, GRID_TILE), mode="area")[0]


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


#: One image of a pair: a path to an image file, or a PIL image already loaded.
ImageSource = Union[str, Path, Image.Image]


def _load(source: ImageSource, channels: int) -> Image.Image:
    """A path loaded by :func:`steg.io.load_image`; a PIL image converted to 'RGB' (3) or 'L' (1)."""
    if isinstance(source, Image.Image):
        return source.convert("RGB" if channels == 3 else "L")
    return load_image(source, channels)


def _name(source: ImageSource, index: int) -> str:
    return f"<image {index}>" if isinstance(source, Image.Image) else str(source)


def evaluate(model, pairs: Sequence[tuple[ImageSource, ImageSource]], size: int | None = None, fit: str = "resize",
             thumbnails: int = 0, progress: bool = False, attacks: Sequence | str | None = None,
             attack_seed: int = 0, key: Any = None) -> EvalResult:
    """Hide and reveal every pair with ``model`` (a :class:`steg.inference.model.StegModel`) and measure it.

    Args:
        pairs: (cover, secret) pairs of paths (see :func:`folder_pairs`) or PIL images.
        size: centre-crop both images to ``size`` x ``size`` (shorter side
            resized first); None: the cover's size, the secret fitted by ``fit``.
        thumbnails: keep this many pairs' images for a grid.
        progress: a progress bar on stderr.
        attacks: real distortions (:class:`steg.distortions.attacks.Attack` list or a spec
            string such as ``"jpeg:90,crop:0.9"``) to apply to each 8-bit stego
            image before revealing it again; measured into ``attack_*``.
        attack_seed: seeds the noise attack's generator (one for the whole run).
        key: hide and reveal with this key (a passphrase or :class:`steg.security.keys.DerivedKey`;
            keyed models only, see :meth:`steg.inference.model.StegModel.hide`).

    Unreadable images and images with a side under :data:`MIN_SIDE` pixels are
    skipped with one warning each (``warnings.warn``) and listed in ``skipped``.

    Raises:
        EvalError: no pair could be evaluated.
        steg.distortions.attacks.AttackError: a malformed attack spec (before any image is read).
    """
    from tqdm.auto import tqdm

    if attacks is not None:
        import numpy as np

        from steg.distortions.attacks import attack_pair, summarize

        attacks = parse_attacks(attacks) if isinstance(attacks, str) else list(attacks)
        attack_rng = np.random.default_rng(attack_seed)

    if size is not None and size < 1:
        raise EvalError(f"--size must be a positive number of pixels, got {size}")
    channels = model.channels
    metrics = {pair: pair_metrics("", "") for pair in PAIRS}
    result = EvalResult(counts={name: torch.zeros(256, dtype=torch.long) for name in HISTOGRAMS.values()})
    bar = tqdm(pairs, desc="eval", unit="pair", disable=not progress or None, file=sys.stderr)
    for index, (cover_source, secret_source) in enumerate(bar):
        cover_path, secret_path = _name(cover_source, 2 * index), _name(secret_source, 2 * index + 1)
        where = f"pair ({Path(cover_path).name}, {Path(secret_path).name})"
        try:
            cover, secret = _load(cover_source, channels), _load(secret_source, channels)
        except ImageError as exc:
            result.skipped.append(f"{where}: {exc}")
            _warn(f"skipping {where}: {exc}")
            continue
        if size is not None:
            cover, secret = square_image(cover, size), square_image(secret, size)
        else:
            secret = fit_image(secret, cover.size, fit)
        if min(cover.size) < MIN_SIDE:
            line = (f"{where}: {cover.size[0]}x{cover.size[1]} pixels, SSIM needs at least "
                    f"{MIN_SIDE} pixels a side")
            result.skipped.append(line)
            _warn(f"skipping {line}")
            continue
        c, s = to_tensor(cover).unsqueeze(0), to_tensor(secret).unsqueeze(0)
        stego = quantize(model.hide_tensor(c, s, key=key))  # exactly what `steg hide` saves
        revealed = quantize(model.reveal_tensor(stego, key=key))  # the reveal net sees the saved stego image
        row: dict[str, Any] = {"cover": str(cover_path), "secret": str(secret_path),
                               "width": cover.size[0], "height": cover.size[1]}
        for pair, (pred, target) in zip(PAIRS, ((stego, c), (revealed, s))):
            collection = metrics[pair]
            collection.reset()
            collection.update(pred, target)
            for name, value in collection.compute().items():
                row[f"{name}_{pair}"] = float(value)
            errors = ((pred - target).abs() * 255).round().long().flatten()
            result.counts[HISTOGRAMS[pair]] += torch.bincount(errors, minlength=256)
        result.rows.append(row)
        if attacks:
            keep = thumbnails > 0 and not result.attack_images
            pair_rows = attack_pair(model, c, s, attacks, attack_rng, stego=stego, keep_images=keep, key=key)
            if keep:
                result.attack_images = pair_rows
            result.attack_rows += [{"pair": index, "cover": cover_path, "secret": secret_path,
                                    **{k: v for k, v in r.items() if not isinstance(v, torch.Tensor)}}
                                   for r in pair_rows]
        if len(result.thumbnails) < thumbnails:
            result.thumbnails.append({k: _thumbnail(v[0]) for k, v in
                                      (("cover", c), ("secret", s), ("stego", stego), ("revealed", revealed))})
    bar.close()
    if not result.rows:
        first = result.skipped[0] if result.skipped else "no pairs given"
        raise EvalError(f"no pair could be evaluated: all {len(pairs)} pairs were skipped (first: {first})")
    for key in SUMMARY_METRICS:
        values = [r[key] for r in result.rows if not math.isnan(r[key])]
        result.summary[key] = statistics.fmean(values) if values else float("nan")
        result.summary[f"{key}_median"] = statistics.median(values) if values else float("nan")
        result.summary[f"{key}_ci95"] = ci95(values)
    if attacks:
        result.attack_summary = summarize(result.attack_rows)
    return result


def table(summary: dict[str, Any]) -> str:
    """The summary as the text table ``steg eval`` prints (mean +- 95% CI of the mean, and median per metric)."""
    lines = [f"{'':22s}{'metric':10s}{'mean':>10s}{'':3s}{'95% CI':>10s}{'median':>10s}"]
    units = {"psnr": ("PSNR", " dB", 2), "ssim": ("SSIM", "", 4), "apd": ("APD 0-255", "", 2)}
    for pair in PAIRS:
        for i, metric in enumerate(METRIC_NAMES):
            name, unit, digits = units[metric]
            mean, median = summary[f"{metric}_{pair}"], summary[f"{metric}_{pair}_median"]
            ci = summary.get(f"{metric}_{pair}_ci95", float("nan"))
            label = HISTOGRAMS[pair] if i == 0 else ""
            lines.append(f"{label:22s}{name:10s}{mean:>10.{digits}f}{unit:3s}{'+- ' + format(ci, f'.{digits}f'):>10s}"
                         f"{median:>10.{digits}f}{unit}")
    return "\n".join(lines)


@dataclass
class AttackReport:
    """What :func:`evaluate_attacks` returns: per-pair rows, the per-attack summary, a grid."""

    rows: list[dict[str, Any]]
    summary: dict[str, dict[str, float]]
    grid: Image.Image | None

    @property
    def table(self) -> str:
        return attack_table(self.summary)


def evaluate_attacks(
    model,
    pairs: Sequence[tuple[Union[str, Path, Image.Image], Union[str, Path, Image.Image]]],
    attacks: Sequence[Attack] | str,
    size: int | None = 256,
    seed: int = 0,
    grid: bool = True,
) -> AttackReport:
    """Evaluate a :class:`steg.inference.model.StegModel` on (cover, secret) pairs under each attack.

    The loop over pairs is :func:`steg.inference.evaluation.evaluate` (``steg eval --attack``); this
    keeps only its attack figures.

    Args:
        pairs: (cover, secret) as paths or PIL images.
        attacks: :class:`Attack` list or a spec string (see :func:`parse_attacks`).
        size: resize (shorter side) and centre-crop both images to size x size; None keeps the
            cover's size and resizes the secret to it.
        seed: seeds the noise attack's generator (one generator for the whole evaluation).
        grid: draw :func:`attack_grid` for the first pair.

    Raises:
        steg.inference.evaluation.EvalError: no pair could be evaluated (unreadable pairs are skipped
            with a warning, as ``steg eval`` does).
    """
    if isinstance(attacks, str):
        attacks = parse_attacks(attacks)
    result = evaluate(model, pairs, size=size, fit="resize", thumbnails=1 if grid else 0,
                      attacks=attacks, attack_seed=seed)
    rows = [{k: v for k, v in row.items() if k not in ("cover", "secret")} for row in result.attack_rows]
    images = result.attack_images
    return AttackReport(rows, result.attack_summary, attack_grid(images) if grid and images else None)
