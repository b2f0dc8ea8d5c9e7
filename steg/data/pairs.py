"""(cover, secret) pair datasets, validation tiles and the base DataModule.

Every DataModule yields batches ``(cover, secret)``: two float32 tensors in
[0, 1] of shape (B, channels, image_size, image_size), collated by torch's
``default_collate``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Union

import lightning as L
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from steg.io import ImageSource, _convert_mode, _warn_skipped, check_images, find_images, load_image, to_tensor

__all__ = ["StegPairs", "PairDataModule", "EpochSampler", "Tile", "tile_boxes", "FEW_STEPS"]

#: An epoch with fewer optimizer steps than this gets a one-line warning.
FEW_STEPS = 10


class Tile(NamedTuple):
    """One fixed validation tile: the image ``source`` (after :func:`_prepare`) cropped to ``box``."""

    source: ImageSource
    box: tuple[int, int, int, int]


Item = Union[ImageSource, Tile]


def _check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices or isinstance(value, bool):
        expected = " or ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _prepared_size(w: int, h: int, size: int, mode: str) -> tuple[int, int]:
    """Size of a (w, h) image after :func:`_prepare`: "resize" makes the shorter side ``size``,
    "crop" upscales only an image whose shorter side is below ``size``."""
    if mode == "crop" and min(w, h) >= size:
        return w, h
    scale = size / min(w, h)
    return max(size, round(w * scale)), max(size, round(h * scale))


def _prepare(img: Image.Image, size: int, mode: str) -> Image.Image:
    """Bicubic resize (antialiased when shrinking) to :func:`_prepared_size`; a no-op when it already fits."""
    new = _prepared_size(*img.size, size, mode)
    return img if new == img.size else img.resize(new, Image.BICUBIC, reducing_gap=None)


def _header_size(source: ImageSource) -> tuple[int, int]:
    """(width, height) of an image as :func:`steg.io.load_image` returns it, from the header only."""
    if isinstance(source, Image.Image):
        return source.size
    with Image.open(source) as img:
        w, h = img.size
        orientation = img.getexif().get(0x0112, 1)  # EXIF rotations 5-8 swap the sides
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def tile_boxes(
    sizes: Sequence[tuple[int, int]], size: int, per_image: int | None = None, total: int | None = None
) -> list[tuple[int, tuple[int, int, int, int]]]:
    """Non-overlapping ``size`` x ``size`` tile boxes over images of the given (prepared) sizes.

    Each image is cut into a raster-order grid. ``per_image``: at most that many
    tiles of each image; ``total``: at most that many in all, shared out between
    images as evenly as possible (round robin), rounded down to even. Within an
    image the tiles are evenly spaced along the raster order. Returned grouped
    by image, so that split pairing (tile i with tile i + n // 2) takes cover
    and secret from different images whenever no image holds half the tiles.

    Returns:
        ``[(image_index, (left, top, right, bottom)), ...]``

    >>> [owner for owner, _ in tile_boxes([(64, 64), (128, 64)], 32, per_image=2)]
    [0, 0, 1, 1]
    """
    grids = [[(x, y, x + size, y + size) for y in range(0, h - size + 1, size) for x in range(0, w - size + 1, size)]
             for w, h in sizes]
    quotas = [len(g) if per_image is None else min(per_image, len(g)) for g in grids]
    if total is not None:
        total = min(total, sum(quotas))
        total -= total % 2
        shares = [0] * len(grids)
        while sum(shares) < total:  # round robin over images with tiles left
            for i in range(len(grids)):
                if shares[i] < quotas[i] and sum(shares) < total:
                    shares[i] += 1
        quotas = shares
    return [(i, grid[math.floor((j + 0.5) * len(grid) / q)]) for i, (grid, q) in enumerate(zip(grids, quotas))
            for j in range(q)]


class EpochSampler(Sampler):
    """Shuffled training order that is a function of (seed, epoch) only; yields ``(index, item_seed)``.

    The order of epoch ``e`` is ``randperm(length)`` from a generator seeded with
    (seed, e), and each item gets its own seed (seed, e, index) for its crops,
    flips and random partner (see :meth:`StegPairs.__getitem__`). Nothing depends
    on what ran before, on DataLoader workers or on the DDP rank, so a resumed
    run replays exactly the epochs of an uninterrupted one. Lightning calls
    :meth:`set_epoch` at each epoch start (through its DDP wrapper too).

    Args:
        length: number of items (the dataset's length).
        seed: base seed; None draws one from torch's global generator (not reproducible).
    """

    def __init__(self, length: int, seed: int | None = None):
        self.length = length
        self.seed = int(torch.randint(0, 2**31 - 1, ()).item()) if seed is None else int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int]]:
        from steg.training.checkpoints import epoch_seed

        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        for index in torch.randperm(self.length, generator=generator).tolist():
            yield index, epoch_seed(self.seed, self.epoch, index)


class StegPairs(Dataset):
    """(cover, secret) pairs of images, each a float32 tensor (channels, image_size, image_size) in [0, 1].

    Args:
        sources: image file paths (decoded at every access), PIL images (kept
            decoded in memory; the small embedded sample) or :class:`Tile`\\ s
            (fixed validation tiles). At least 2.
        image_size: side of the square output.
        mode: "crop": a random image_size crop when training, a centre crop
            otherwise; an image smaller than image_size (either side) is first
            upscaled (bicubic) so its shorter side equals image_size.
            "resize": resize the shorter side to image_size (bicubic,
            antialiased), then crop the same way.
        channels: 3 (RGB) or 1 (luma).
        pairing: "split": the first half of the n items are covers, the
            second half secrets (pair i = (item i, item i + n // 2),
            n // 2 pairs; with n odd the last item is unused).
            "random": n pairs, cover i = item i, secret = a different item
            drawn anew at every access (fresh pairs every epoch).
        flip: random horizontal and vertical flips (training only), drawn
            independently for cover and secret.
        train: False makes the dataset fully deterministic: centre crops, no
            flips, and split pairing regardless of ``pairing``.
        repeats: the dataset is ``repeats`` times longer (index modulo the
            number of pairs), to make epochs of a small image set longer.
        length: the dataset's length (index modulo the number of pairs);
            overrides ``repeats`` (``data.samples_per_epoch``).

    Randomness (crops, flips, random partners): indexed by ``(index, seed)`` (what
    :class:`EpochSampler` yields), from a generator seeded with ``seed``; indexed
    by a plain int, from torch's global generator.
    """

    def __init__(
        self,
        sources: Sequence[Item],
        image_size: int = 64,
        mode: str = "crop",
        channels: int = 3,
        pairing: str = "split",
        flip: bool = True,
        train: bool = True,
        repeats: int = 1,
        length: int | None = None,
    ) -> None:
        _check_int("image_size", image_size, 1)
        _check_choice("mode", mode, ("crop", "resize"))
        _check_choice("channels", channels, (1, 3))
        _check_choice("pairing", pairing, ("split", "random"))
        _check_int("repeats", repeats, 1)
        if length is not None:
            _check_int("length", length, 1)
        if len(sources) < 2:
            raise ValueError(f"StegPairs needs at least 2 images to make a pair, got {len(sources)}")
        self.image_size = image_size
        self.mode = mode
        self.channels = channels
        self.train = bool(train)
        self.pairing = pairing if self.train else "split"
        self.flip = bool(flip) and self.train
        self.length = length if length is not None else self.num_pairs_of(len(sources)) * repeats
        self.sources: list[Item] = [self._keep(s) for s in sources]

    def _keep(self, source: Item) -> Item:
        if isinstance(source, Tile):
            return Tile(self._keep(source.source), tuple(source.box))
        return _convert_mode(source, self.channels) if isinstance(source, Image.Image) else Path(source)

    def num_pairs_of(self, n: int) -> int:
        return n // 2 if self.pairing == "split" else n

    @property
    def num_pairs(self) -> int:
        """Number of distinct pairs (or covers, for random pairing) before ``repeats``/``length``."""
        return self.num_pairs_of(len(self.sources))

    def __len__(self) -> int:
        return self.length

    def pair_indices(self, index: int, generator: torch.Generator | None = None) -> tuple[int, int]:
        """Item indices (cover, secret) of pair ``index``; random pairing draws the secret."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} pairs")
        n = len(self.sources)
        cover = index % self.num_pairs
        if self.pairing == "split":
            return cover, cover + n // 2
        secret = int(torch.randint(0, n - 1, (), generator=generator))
        return cover, secret + (secret >= cover)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pair ``index`` (or ``(index, seed)``) -> (cover, secret), each (channels, image_size, image_size)."""
        index, seed = key if isinstance(key, tuple) else (key, None)
        generator = None if seed is None else torch.Generator().manual_seed(int(seed))
        cover, secret = self.pair_indices(index, generator)
        return self.load_item(cover, generator), self.load_item(secret, generator)

    def _open(self, source: ImageSource) -> Image.Image:
        return source if isinstance(source, Image.Image) else load_image(source, self.channels)

    def load_item(self, item: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Image ``item`` cropped/resized (and flipped when training) -> (channels, image_size, image_size)."""
        source = self.sources[item]
        if isinstance(source, Tile):
            return to_tensor(_prepare(self._open(source.source), self.image_size, self.mode).crop(source.box))
        tensor = to_tensor(self._fit(self._open(source), generator))
        if self.flip:
            if torch.rand((), generator=generator) < 0.5:
                tensor = tensor.flip(-1)
            if torch.rand((), generator=generator) < 0.5:
                tensor = tensor.flip(-2)
        return tensor

    def _fit(self, img: Image.Image, generator: torch.Generator | None = None) -> Image.Image:
        """Crop (random when training in crop mode, else centre) to image_size x image_size."""
        size = self.image_size
        img = _prepare(img, size, self.mode)
        w, h = img.size
        if self.train and self.mode == "crop":
            left = int(torch.randint(0, w - size + 1, (), generator=generator))
            top = int(torch.randint(0, h - size + 1, (), generator=generator))
        else:
            left, top = (w - size) // 2, (h - size) // 2
        return img.crop((left, top, left + size, top + size))


class PairDataModule(L.LightningDataModule):
    """Base DataModule: batches ``(cover, secret)``, each float32 (B, channels, image_size, image_size) in [0, 1].

    Args:
        image_size: side of the square images (int >= 16).
        channels: 3 (RGB) or 1 (grey).
        mode: "crop" or "resize" (see ``StegPairs``).
        pairing: "split" or "random" for training (validation is always split).
        batch_size: images per batch (training drops the last partial batch).
        num_workers: DataLoader worker processes (persistent when > 0); None: chosen
            by where the trainer runs (:meth:`workers`: 0 on a CPU, several on a GPU).
            Batches are pinned when CUDA is available, for non-blocking copies.
        flip: random flips in training.
        val_limit: at most this many validation images (the first ones in
            sorted order); None = all.
        samples_per_epoch: training pairs per epoch (drawn round-robin over the
            pairs, shuffled); None = one pass over the pairs. Makes an epoch of
            a small folder long enough, and one of a huge set short enough.
        val_tiles_per_image: validation takes up to this many fixed,
            non-overlapping image_size tiles of each validation image (evenly
            spread over it), instead of one centre crop.
        seed: seed of the training order, crops, flips and random pairs, per
            epoch (:class:`EpochSampler`); None: a random one.

    Subclasses implement ``_build_datasets``. ``setup()`` scans and checks the
    files once (idempotent) and exposes ``train_dataset`` / ``val_dataset``.
    """

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        mode: str = "crop",
        pairing: str = "split",
        batch_size: int = 16,
        num_workers: int | None = 0,
        flip: bool = True,
        val_limit: int | None = None,
        samples_per_epoch: int | None = None,
        val_tiles_per_image: int = 1,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        _check_int("data.image_size", image_size, 16)
        _check_choice("data.channels", channels, (1, 3))
        _check_choice("data.mode", mode, ("crop", "resize"))
        _check_choice("data.pairing", pairing, ("split", "random"))
        _check_int("data.batch_size", batch_size, 1)
        if num_workers is not None:
            _check_int("data.num_workers", num_workers, 0)
        if not isinstance(flip, bool):
            raise ValueError(f"data.flip must be true or false, got {flip!r}")
        if val_limit is not None:
            _check_int("data.val_limit", val_limit, 2)
        if samples_per_epoch is not None:
            _check_int("data.samples_per_epoch", samples_per_epoch, 1)
        _check_int("data.val_tiles_per_image", val_tiles_per_image, 1)
        self.image_size = image_size
        self.channels = channels
        self.mode = mode
        self.pairing = pairing
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.flip = flip
        self.val_limit = val_limit
        self.samples_per_epoch = samples_per_epoch
        self.val_tiles_per_image = val_tiles_per_image
        self.seed = seed
        self.train_dataset: StegPairs | None = None
        self.val_dataset: StegPairs | None = None

    def _build_datasets(self) -> tuple[StegPairs, StegPairs]:
        """Return (train_dataset, val_dataset); called once by ``setup``."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Scan and check the images and build the datasets (only the first time)."""
        if self.train_dataset is not None:
            return
        train, val = self._build_datasets()
        if len(train) < self.batch_size:
            raise ValueError(
                f"data.batch_size={self.batch_size} is larger than the training set "
                f"({len(train)} pairs); lower data.batch_size or raise data.samples_per_epoch"
            )
        self.train_dataset, self.val_dataset = train, val
        self._warn_short_epoch()

    def _warn_short_epoch(self) -> None:
        processes = self.trainer.world_size if self.trainer is not None else 1
        if processes > 1 and len(self.val_dataset) % processes:
            warnings.warn(
                f"data: {len(self.val_dataset)} validation pairs do not divide among {processes} processes; the "
                f"distributed sampler repeats {processes - len(self.val_dataset) % processes} of them, so validation "
                "figures differ slightly from one process (make data.val_tiles / val_limit a multiple)",
                stacklevel=2,
            )
        steps = len(self.train_dataset) // (self.batch_size * processes)
        if steps < FEW_STEPS:
            warnings.warn(
                f"data: an epoch is only {steps} step(s) ({len(self.train_dataset)} training pairs, "
                f"batch {self.batch_size} x {processes} process(es)); validation and checkpoints run every "
                f"epoch, so raise data.samples_per_epoch (e.g. {FEW_STEPS * self.batch_size * processes})",
                stacklevel=2,
            )

    def _pairs(self, sources: Sequence[Item], train: bool, repeats: int = 1) -> StegPairs:
        return StegPairs(
            sources,
            image_size=self.image_size,
            mode=self.mode,
            channels=self.channels,
            pairing=self.pairing,
            flip=self.flip,
            train=train,
            repeats=repeats,
            length=self.samples_per_epoch if train else None,
        )

    def _val_pairs(self, sources: Sequence[ImageSource], total: int | None = None) -> StegPairs:
        """Validation pairs of fixed tiles: ``val_tiles_per_image`` per image (or ``total`` in all)."""
        sizes = [_prepared_size(*_header_size(s), self.image_size, self.mode) for s in sources]
        per_image = None if total is not None else self.val_tiles_per_image
        tiles = [Tile(sources[i], box) for i, box in tile_boxes(sizes, self.image_size, per_image, total)]
        return self._pairs(tiles, train=False)

    def _limit_val(self, paths: list[Path]) -> list[Path]:
        return paths if self.val_limit is None else paths[: self.val_limit]

    def workers(self) -> int:
        """DataLoader workers: ``num_workers``, or with None, 0 unless the trainer runs on CUDA, where
        ``min(8, CPUs per device - 1)`` keep the GPU fed (``trainer=gpu`` with the default data configs)."""
        if self.num_workers is not None:
            return self.num_workers
        import os

        trainer = self.trainer
        if trainer is None or getattr(trainer.strategy.root_device, "type", "cpu") != "cuda":
            return 0
        per_device = (os.cpu_count() or 1) // max(1, trainer.num_devices)
        return max(0, min(8, per_device - 1))

    @property
    def persistent_workers(self) -> bool:
        """Whether the loaders keep their worker processes between epochs (whenever there are workers)."""
        return self.workers() > 0

    def _loader(self, dataset: Dataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        workers = self.workers()
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochSampler(len(dataset), self.seed) if train else None,
            drop_last=train,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled batches [covers, secrets], last partial batch dropped."""
        return self._loader(self.train_dataset, train=True)

    def val_dataloader(self) -> DataLoader:
        """Deterministic batches [covers, secrets] in a fixed order."""
        return self._loader(self.val_dataset, train=False)


def _scan_folder(folder: Path, layout: str, recursive: bool = True) -> list[Path]:
    """Good image paths under ``folder`` (sorted); warn once about bad ones.

    Raises FileNotFoundError (missing folder, or no images in it) with ``layout``.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not an existing folder; {layout}")
    paths = find_images(folder, recursive=recursive)
    if not paths:
        raise FileNotFoundError(f"no images found in {folder}; {layout}")
    good, bad = check_images(paths)
    _warn_skipped(bad, folder)
    if not good:
        raise ValueError(f"none of the {len(paths)} image(s) in {folder} could be read; {layout}")
    return good


def _need_images(paths: Sequence[Path], folder: Path, what: str, minimum: int = 2) -> None:
    if len(paths) < minimum:
        raise ValueError(f"{what} {folder} has {len(paths)} readable image(s); at least {minimum} are needed")

