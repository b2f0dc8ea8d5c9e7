"""The embedded default data: real photographs shipped inside scikit-image and matplotlib."""

from __future__ import annotations

from typing import Any

from steg.data.pairs import PairDataModule, StegPairs, _check_int
from steg.data.photos import SAMPLE_TRAIN_PHOTOS, SAMPLE_VAL_PHOTOS, sample_photo_paths
from steg.io import load_image

__all__ = ["SampleDataModule", "SAMPLE_TRAIN_PHOTOS", "SAMPLE_VAL_PHOTOS", "sample_photo_paths"]

class SampleDataModule(PairDataModule):
    """Embedded default data: real photographs shipped inside scikit-image and matplotlib.

    Training: ``SAMPLE_TRAIN_PHOTOS``, decoded once and kept in memory, as
    ``StegPairs`` with random crops/flips; an epoch is ``samples_per_epoch``
    pairs, or ``train_repeats`` passes over the 6 pairs when that is None.
    Validation: ``val_tiles`` fixed non-overlapping image_size tiles (fewer if
    the photos hold fewer, and at most ``val_limit``) shared out evenly between
    the held-out ``SAMPLE_VAL_PHOTOS``; pair i = (tile i, tile i + n // 2),
    cover and secret from different photos.

    Args:
        train_repeats: passes over the training photos per epoch (int >= 1),
            used when ``samples_per_epoch`` is None.
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
        train = self._pairs(train_photos, train=True, repeats=self.train_repeats)
        return train, self._val_pairs(val_photos, total=count)
