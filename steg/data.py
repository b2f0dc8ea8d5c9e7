"""Data for image steganography: (cover, secret) pairs as Lightning DataModules.

Every DataModule here yields batches ``(cover, secret)``: two float32 tensors
in [0, 1] of shape (B, channels, image_size, image_size).

Layouts:

* ``SampleDataModule``  - real photographs shipped inside installed packages
  (scikit-image, matplotlib); nothing is downloaded.
* ``FolderDataModule``  - any folder tree of images.
* ``DIV2KDataModule``   - ``DIV2K_train_HR/`` and ``DIV2K_valid_HR/``.
* ``TinyImageNetDataModule`` - ``tiny-imagenet-200/{train,val}``.

Image loading (``load_image``, ``to_tensor``, ``find_images``,
``check_images``) is also used outside the DataModules (e.g. by a CLI).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from steg.io import (  # noqa: F401  (re-exported: steg.data is where users look)
    IMAGE_EXTENSIONS,
    ImageError,
    ImageSource,
    _convert_mode,
    _is_image_file,
    _warn_skipped,
    check_images,
    find_images,
    load_image,
    to_tensor,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "SAMPLE_TRAIN_PHOTOS",
    "SAMPLE_VAL_PHOTOS",
    "ImageError",
    "load_image",
    "to_tensor",
    "find_images",
    "check_images",
    "sample_photo_paths",
    "StegPairs",
    "PairDataModule",
    "SampleDataModule",
    "FolderDataModule",
    "DIV2KDataModule",
    "TinyImageNetDataModule",
]


#: Training photographs of the embedded sample, from scikit-image's ``data/``
#: folder. Ordered so that split pairing (item i with item i + 6) pairs colour
#: with colour and grey with grey, and both halves (covers, secrets) hold
#: colour and grey photos alike; the two motorcycle stereo views are not paired.
SAMPLE_TRAIN_PHOTOS = (
    "astronaut.png",
    "motorcycle_left.png",
    "retina.jpg",
    "camera.png",
    "moon.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_right.png",
    "coins.png",
    "grass.png",
    "brick.png",
)

#: Held-out validation photographs of the embedded sample, never used in
#: training: three from scikit-image, ``grace_hopper.jpg`` from matplotlib.
SAMPLE_VAL_PHOTOS = ("coffee.png", "rocket.jpg", "chelsea.png", "grace_hopper.jpg")

_MATPLOTLIB_PHOTOS = {"grace_hopper.jpg"}


# --------------------------------------------------------------------------- #
# Dataset of (cover, secret) pairs
# --------------------------------------------------------------------------- #


def _check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices or isinstance(value, bool):
        expected = " or ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _upscale_to_cover(img: Image.Image, size: int) -> Image.Image:
    """Bicubic upscale so that the shorter side is at least ``size`` (no-op if already)."""
    w, h = img.size
    if min(w, h) >= size:
        return img
    scale = size / min(w, h)
    return img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)


def _resize_shorter_side(img: Image.Image, size: int) -> Image.Image:
    """Bicubic resize (antialiased when shrinking) so the shorter side equals ``size``."""
    w, h = img.size
    scale = size / min(w, h)
    new_size = (max(size, round(w * scale)), max(size, round(h * scale)))
    return img if new_size == (w, h) else img.resize(new_size, Image.BICUBIC, reducing_gap=None)


class StegPairs(Dataset):
    """(cover, secret) pairs of images, each a float32 tensor (channels, image_size, image_size) in [0, 1].

    Args:
        sources: image file paths (decoded at every access), or PIL images
            (kept decoded in memory; used for the small embedded sample).
            At least 2.
        image_size: side of the square output.
        mode: "crop": a random image_size crop when training, a centre crop
            otherwise; an image smaller than image_size (either side) is first
            upscaled (bicubic) so its shorter side equals image_size.
            "resize": resize the shorter side to image_size (bicubic,
            antialiased), then centre crop.
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

    All randomness uses torch's RNG, so ``lightning.seed_everything(seed,
    workers=True)`` makes it reproducible.
    """

    def __init__(
        self,
        sources: Sequence[ImageSource],
        image_size: int = 64,
        mode: str = "crop",
        channels: int = 3,
        pairing: str = "split",
        flip: bool = True,
        train: bool = True,
        repeats: int = 1,
    ) -> None:
        _check_int("image_size", image_size, 1)
        _check_choice("mode", mode, ("crop", "resize"))
        _check_choice("channels", channels, (1, 3))
        _check_choice("pairing", pairing, ("split", "random"))
        _check_int("repeats", repeats, 1)
        if len(sources) < 2:
            raise ValueError(f"StegPairs needs at least 2 images to make a pair, got {len(sources)}")
        self.image_size = image_size
        self.mode = mode
        self.channels = channels
        self.train = bool(train)
        self.pairing = pairing if self.train else "split"
        self.flip = bool(flip) and self.train
        self.repeats = repeats
        self.sources: list[ImageSource] = [
            _convert_mode(s, channels) if isinstance(s, Image.Image) else Path(s) for s in sources
        ]

    @property
    def num_pairs(self) -> int:
        """Number of distinct pairs (or covers, for random pairing) before ``repeats``."""
        n = len(self.sources)
        return n // 2 if self.pairing == "split" else n

    def __len__(self) -> int:
        return self.num_pairs * self.repeats

    def pair_indices(self, index: int) -> tuple[int, int]:
        """Item indices (cover, secret) of pair ``index``; random pairing draws the secret."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} pairs")
        n = len(self.sources)
        cover = index % self.num_pairs
        if self.pairing == "split":
            return cover, cover + n // 2
        secret = int(torch.randint(0, n - 1, ()))
        return cover, secret + (secret >= cover)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pair ``index`` -> (cover, secret), each (channels, image_size, image_size)."""
        cover, secret = self.pair_indices(index)
        return self.load_item(cover), self.load_item(secret)

    def load_item(self, item: int) -> torch.Tensor:
        """Image ``item`` cropped/resized (and flipped when training) -> (channels, image_size, image_size)."""
        source = self.sources[item]
        img = source if isinstance(source, Image.Image) else load_image(source, self.channels)
        tensor = to_tensor(self._fit(img))
        if self.flip:
            if torch.rand(()) < 0.5:
                tensor = tensor.flip(-1)
            if torch.rand(()) < 0.5:
                tensor = tensor.flip(-2)
        return tensor

    def _fit(self, img: Image.Image) -> Image.Image:
        """Crop (random when training in crop mode, else centre) to image_size x image_size."""
        size = self.image_size
        if self.mode == "resize":
            img = _resize_shorter_side(img, size)
        else:
            img = _upscale_to_cover(img, size)
        w, h = img.size
        if self.train and self.mode == "crop":
            left = int(torch.randint(0, w - size + 1, ()))
            top = int(torch.randint(0, h - size + 1, ()))
        else:
            left, top = (w - size) // 2, (h - size) // 2
        return img.crop((left, top, left + size, top + size))


def _collate_pairs(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """List of (cover, secret) -> (covers, secrets), each (B, C, H, W)."""
    covers, secrets = zip(*batch)
    return torch.stack(covers), torch.stack(secrets)


# --------------------------------------------------------------------------- #
# DataModules
# --------------------------------------------------------------------------- #


class PairDataModule(L.LightningDataModule):
    """Base DataModule: batches ``(cover, secret)``, each float32 (B, channels, image_size, image_size) in [0, 1].

    Args:
        image_size: side of the square images (int >= 16).
        channels: 3 (RGB) or 1 (grey).
        mode: "crop" or "resize" (see ``StegPairs``).
        pairing: "split" or "random" for training (validation is always split).
        batch_size: images per batch (training drops the last partial batch).
        num_workers: DataLoader worker processes (persistent when > 0).
        flip: random flips in training.
        val_limit: at most this many validation images (the first ones in
            sorted order); None = all.

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
        num_workers: int = 0,
        flip: bool = True,
        val_limit: int | None = None,
    ) -> None:
        super().__init__()
        _check_int("data.image_size", image_size, 16)
        _check_choice("data.channels", channels, (1, 3))
        _check_choice("data.mode", mode, ("crop", "resize"))
        _check_choice("data.pairing", pairing, ("split", "random"))
        _check_int("data.batch_size", batch_size, 1)
        _check_int("data.num_workers", num_workers, 0)
        if not isinstance(flip, bool):
            raise ValueError(f"data.flip must be true or false, got {flip!r}")
        if val_limit is not None:
            _check_int("data.val_limit", val_limit, 2)
        self.image_size = image_size
        self.channels = channels
        self.mode = mode
        self.pairing = pairing
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.persistent_workers = num_workers > 0
        self.flip = flip
        self.val_limit = val_limit
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
                f"({len(train)} pairs); lower data.batch_size or add images"
            )
        self.train_dataset, self.val_dataset = train, val

    def _pairs(self, sources: Sequence[ImageSource], train: bool, repeats: int = 1) -> StegPairs:
        return StegPairs(
            sources,
            image_size=self.image_size,
            mode=self.mode,
            channels=self.channels,
            pairing=self.pairing,
            flip=self.flip,
            train=train,
            repeats=repeats,
        )

    def _limit_val(self, paths: list[Path]) -> list[Path]:
        return paths if self.val_limit is None else paths[: self.val_limit]

    def _loader(self, dataset: Dataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=self.num_workers,
            persistent_workers=self.persistent_workers,
            pin_memory=torch.cuda.is_available(),
            collate_fn=_collate_pairs,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled batches (covers, secrets), last partial batch dropped."""
        return self._loader(self.train_dataset, train=True)

    def val_dataloader(self) -> DataLoader:
        """Deterministic batches (covers, secrets) in a fixed order."""
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


# --- embedded sample -------------------------------------------------------- #


def _skimage_data_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-image is not installed; the embedded sample photos come from it")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _matplotlib_sample_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data"


def sample_photo_paths(split: str) -> list[Path]:
    """Paths of the embedded sample photos for ``split`` ("train" or "val"), in list order.

    Read directly from the installed scikit-image (``skimage/data/``) and
    matplotlib (``mpl-data/sample_data/``) packages; nothing is downloaded.
    """
    _check_choice("split", split, ("train", "val"))
    names = SAMPLE_TRAIN_PHOTOS if split == "train" else SAMPLE_VAL_PHOTOS
    skimage_dir = _skimage_data_dir()
    matplotlib_dir = _matplotlib_sample_dir() if any(n in _MATPLOTLIB_PHOTOS for n in names) else None
    paths = [(matplotlib_dir if name in _MATPLOTLIB_PHOTOS else skimage_dir) / name for name in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"embedded sample photo(s) not found: {', '.join(missing)}")
    return paths


def _sample_val_tiles(
    photos: Sequence[Image.Image], size: int, count: int
) -> tuple[list[Image.Image], list[int]]:
    """Cut up to ``count`` (rounded down to even) non-overlapping size x size tiles from ``photos``.

    Each photo is cut into a raster-order grid of tiles (a photo smaller than
    ``size`` is first upscaled so its shorter side equals ``size``). Tiles are
    shared out between photos as evenly as possible and, within a photo, taken
    evenly spaced along the raster order. They are returned grouped by photo,
    so that with split pairing (tile i with tile i + count // 2) cover and
    secret come from different photos whenever no photo supplies more than
    half the tiles.

    Returns:
        (tiles, owners): the tiles and, for each, the index of its photo.
    """
    grids = []
    for photo in photos:
        photo = _upscale_to_cover(photo, size)
        w, h = photo.size
        boxes = [
            (x, y, x + size, y + size)
            for y in range(0, h - size + 1, size)
            for x in range(0, w - size + 1, size)
        ]
        grids.append((photo, boxes))
    count = min(count, sum(len(boxes) for _, boxes in grids))
    count -= count % 2

    quotas = [0] * len(grids)
    while sum(quotas) < count:  # round-robin over photos with tiles left
        for p, (_, boxes) in enumerate(grids):
            if quotas[p] < len(boxes) and sum(quotas) < count:
                quotas[p] += 1

    tiles: list[Image.Image] = []
    owners: list[int] = []
    for p, ((photo, boxes), quota) in enumerate(zip(grids, quotas)):
        for j in range(quota):
            tiles.append(photo.crop(boxes[math.floor((j + 0.5) * len(boxes) / quota)]))
            owners.append(p)
    return tiles, owners


class SampleDataModule(PairDataModule):
    """Embedded default data: real photographs shipped inside scikit-image and matplotlib.

    Training: ``SAMPLE_TRAIN_PHOTOS``, decoded once and kept in memory, as
    ``StegPairs`` with random crops/flips, ``train_repeats`` times per epoch.
    Validation: ``val_tiles`` deterministic non-overlapping image_size tiles
    (fewer if the photos hold fewer, and at most ``val_limit``) cut from the
    held-out ``SAMPLE_VAL_PHOTOS``; pair i = (tile i, tile i + n // 2), cover
    and secret from different photos.

    Args:
        train_repeats: passes over the training photos per epoch (int >= 1).
        val_tiles: number of validation tiles (int >= 2), i.e. val_tiles // 2 pairs.
        **common: see ``PairDataModule``.
    """

    def __init__(self, train_repeats: int = 64, val_tiles: int = 64, **common: Any) -> None:
        super().__init__(**common)
        _check_int("data.train_repeats", train_repeats, 1)
        _check_int("data.val_tiles", val_tiles, 2)
        self.train_repeats = train_repeats
        self.val_tiles = val_tiles

    def _build_datasets(self) -> tuple[StegPairs, StegPairs]:
        train_photos = [load_image(p, self.channels) for p in sample_photo_paths("train")]
        val_photos = [load_image(p, self.channels) for p in sample_photo_paths("val")]
        count = self.val_tiles if self.val_limit is None else min(self.val_tiles, self.val_limit)
        tiles, _ = _sample_val_tiles(val_photos, self.image_size, count)
        train = self._pairs(train_photos, train=True, repeats=self.train_repeats)
        return train, self._pairs(tiles, train=False)


# --- folders of images ------------------------------------------------------ #

_FOLDER_LAYOUT = (
    "expected a folder of " + "/".join(IMAGE_EXTENSIONS) + " images, searched recursively"
)


def _split_every_kth(paths: list[Path], fraction: float) -> tuple[list[Path], list[Path]]:
    """Deterministic (train, val) split of sorted ``paths``: evenly spaced files go to val.

    round(n * fraction) files (at least 2) are spread evenly over the sorted
    list, so that every sub-folder contributes in proportion.
    """
    n = len(paths)
    n_val = max(2, round(n * fraction))
    val_index = {math.floor((j + 0.5) * n / n_val) for j in range(n_val)}
    train = [p for i, p in enumerate(paths) if i not in val_index]
    val = [p for i, p in enumerate(paths) if i in val_index]
    return train, val


class FolderDataModule(PairDataModule):
    """Any folder tree of images (``IMAGE_EXTENSIONS``, searched recursively).

    Args:
        root: training images (or all images, if ``val_root`` is None).
        val_root: validation images; if None, ``val_fraction`` of the files
            under ``root`` (evenly spaced in sorted order, the same files every
            time, at least 2) are held out for validation.
        val_fraction: fraction held out when ``val_root`` is None (0 < f < 1).
        **common: see ``PairDataModule``.

    Unreadable files are skipped with one warning per folder.
    """

    def __init__(
        self,
        root: str | Path,
        val_root: str | Path | None = None,
        val_fraction: float = 0.1,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        is_number = isinstance(val_fraction, (int, float)) and not isinstance(val_fraction, bool)
        if not is_number or not 0 < val_fraction < 1:
            raise ValueError(
                f"data.val_fraction must be a number between 0 and 1 (exclusive), got {val_fraction!r}"
            )
        self.root = Path(root).expanduser()
        self.val_root = None if val_root is None else Path(val_root).expanduser()
        self.val_fraction = float(val_fraction)

    def _build_datasets(self) -> tuple[StegPairs, StegPairs]:
        paths = _scan_folder(self.root, _FOLDER_LAYOUT)
        if self.val_root is None:
            if len(paths) < 4:
                raise ValueError(
                    f"data.root {self.root} has {len(paths)} readable image(s); at least 4 are needed "
                    "(2 for training, 2 for validation) unless data.val_root is set"
                )
            train, val = _split_every_kth(paths, self.val_fraction)
        else:
            train, val = paths, _scan_folder(self.val_root, _FOLDER_LAYOUT)
            _need_images(train, self.root, "data.root")
            _need_images(val, self.val_root, "data.val_root")
        return self._pairs(train, train=True), self._pairs(self._limit_val(val), train=False)


class DIV2KDataModule(PairDataModule):
    """DIV2K high-resolution images: ``root/DIV2K_train_HR/*.png`` and ``root/DIV2K_valid_HR/*.png``.

    Args:
        root: the folder holding ``DIV2K_train_HR`` and ``DIV2K_valid_HR``.
        **common: see ``PairDataModule``.
    """

    LAYOUT = "expected ROOT/DIV2K_train_HR/*.png and ROOT/DIV2K_valid_HR/*.png"

    def __init__(self, root: str | Path, **common: Any) -> None:
        super().__init__(**common)
        self.root = Path(root).expanduser()

    def _build_datasets(self) -> tuple[StegPairs, StegPairs]:
        if not self.root.is_dir():
            raise FileNotFoundError(f"DIV2K root {self.root} is not an existing folder; {self.LAYOUT}")
        folders = {name: self.root / name for name in ("DIV2K_train_HR", "DIV2K_valid_HR")}
        for name, folder in folders.items():
            if not folder.is_dir():
                raise FileNotFoundError(f"DIV2K root {self.root} has no {name}/ subfolder; {self.LAYOUT}")
        train = _scan_folder(folders["DIV2K_train_HR"], self.LAYOUT, recursive=False)
        val = _scan_folder(folders["DIV2K_valid_HR"], self.LAYOUT, recursive=False)
        _need_images(train, folders["DIV2K_train_HR"], "DIV2K folder")
        _need_images(val, folders["DIV2K_valid_HR"], "DIV2K folder")
        return self._pairs(train, train=True), self._pairs(self._limit_val(val), train=False)


class TinyImageNetDataModule(PairDataModule):
    """Tiny ImageNet: ``root/train/<wnid>/images/*.JPEG`` and ``root/val/images/*.JPEG``.

    The images are 64x64, so the default crop mode at image_size 64 uses the
    whole image.

    Args:
        root: the ``tiny-imagenet-200`` folder (its parent also works).
        **common: see ``PairDataModule``.
    """

    LAYOUT = "expected ROOT/train/<wnid>/images/*.JPEG and ROOT/val/images/*.JPEG (ROOT = tiny-imagenet-200)"

    def __init__(self, root: str | Path, **common: Any) -> None:
        super().__init__(**common)
        self.root = Path(root).expanduser()

    def _build_datasets(self) -> tuple[StegPairs, StegPairs]:
        root = self.root
        if not root.is_dir():
            raise FileNotFoundError(f"Tiny ImageNet root {root} is not an existing folder; {self.LAYOUT}")
        if not (root / "train").is_dir() and (root / "tiny-imagenet-200" / "train").is_dir():
            root = root / "tiny-imagenet-200"
        train_dir, val_dir = root / "train", root / "val" / "images"
        for folder in (train_dir, val_dir):
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"Tiny ImageNet root {root} has no {folder.relative_to(root)}/ subfolder; {self.LAYOUT}"
                )
        class_paths = sorted(
            p for p in train_dir.glob("*/images/*") if _is_image_file(p) and not p.name.startswith(".")
        )
        if not class_paths:
            raise FileNotFoundError(f"no images found in {train_dir}/<wnid>/images/; {self.LAYOUT}")
        train, bad = check_images(class_paths)
        _warn_skipped(bad, train_dir)
        val = _scan_folder(val_dir, self.LAYOUT, recursive=False)
        _need_images(train, train_dir, "Tiny ImageNet folder")
        _need_images(val, val_dir, "Tiny ImageNet folder")
        return self._pairs(train, train=True), self._pairs(self._limit_val(val), train=False)
