"""Data for image steganography: (cover, secret) pairs as Lightning DataModules.

Every DataModule yields batches ``[cover, secret]``: two float32 tensors in [0, 1]
of shape (B, channels, image_size, image_size). One module per data source:

* :mod:`steg.data.pairs`  - ``StegPairs`` (the pair dataset), validation tiles,
  ``PairDataModule`` (the base: batch size, samples per epoch, tiles per image).
* :mod:`steg.data.photos` - the embedded sample photos (no Lightning import).
* :mod:`steg.data.sample` - ``SampleDataModule``: photographs shipped inside
  scikit-image and matplotlib; nothing is downloaded.
* :mod:`steg.data.folder` - ``FolderDataModule``: any folder tree of images.
* :mod:`steg.data.div2k`  - ``DIV2KDataModule``: ``DIV2K_train_HR/`` and ``DIV2K_valid_HR/``.
* :mod:`steg.data.tiny_imagenet` - ``TinyImageNetDataModule``: ``tiny-imagenet-200/{train,val}``.

Image loading (``load_image``, ``to_tensor``, ``find_images``, ``check_images``)
lives in :mod:`steg.io` and is re-exported here.
"""

from importlib import import_module
from typing import Any

from steg.data.photos import SAMPLE_TRAIN_PHOTOS, SAMPLE_VAL_PHOTOS, sample_photo_paths
from steg.io import IMAGE_EXTENSIONS, ImageError, check_images, find_images, load_image, to_tensor
from steg.io import _convert_mode  # noqa: F401  (kept for steg.inference.model until it imports it from steg.io)

# The DataModules import Lightning: loaded on first use, so that `from steg.data import
# sample_photo_paths` (steg samples, the light inference path) stays free of it.
_LAZY = {
    "StegPairs": "pairs", "EpochSampler": "pairs", "Tile": "pairs", "tile_boxes": "pairs", "PairDataModule": "pairs",
    "SampleDataModule": "sample", "FolderDataModule": "folder", "DIV2KDataModule": "div2k",
    "TinyImageNetDataModule": "tiny_imagenet",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"steg.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'steg.data' has no attribute {name!r}")


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
    "EpochSampler",
    "Tile",
    "tile_boxes",
    "PairDataModule",
    "SampleDataModule",
    "FolderDataModule",
    "DIV2KDataModule",
    "TinyImageNetDataModule",
]
