"""The embedded default data: real photographs shipped inside scikit-image and matplotlib."""

from __future__ import annotations

from typing import Any

import torch

from steg.data.pairs import PairDataModule, StegPairs, _check_int, _prepare
from steg.data.photos import SAMPLE_TRAIN_PHOTOS, SAMPLE_VAL_PHOTOS, sample_photo_paths
from steg.io import load_image, to_tensor

__all__ = ["SampleDataModule", "CropParams", "SAMPLE_TRAIN_PHOTOS", "SAMPLE_VAL_PHOTOS", "sample_photo_paths"]


class CropParams(StegPairs):
    """Training pairs as crop parameters, cut later on the device: ``(cover, secret)`` -> two (5,) int64 tensors.

    Each is ``[photo, top, left, flip_h, flip_v]``, drawn from the same generator
    in the same order as :meth:`StegPairs.load_item` draws them, so that
    :meth:`cut` of a batch gives exactly the images :class:`StegPairs` would
    have made (same seed, same epoch): only where the cropping runs changes.
    The photos are decoded and prepared once (``prepared``, (C, H_i, W_i) each).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prepared = [to_tensor(_prepare(self._open(s), self.image_size, self.mode)) for s in self.sources]
        self._on: dict[torch.device, list[torch.Tensor]] = {}

    def load_item(self, item: int, generator: torch.Generator | None = None) -> torch.Tensor:
        size = self.image_size
        h, w = self.prepared[item].shape[-2:]
        if self.train and self.mode == "crop":
            left = int(torch.randint(0, w - size + 1, (), generator=generator))
            top = int(torch.randint(0, h - size + 1, (), generator=generator))
        else:
            left, top = (w - size) // 2, (h - size) // 2
        flips = [0, 0]
        if self.flip:
            flips = [int(torch.rand((), generator=generator) < 0.5) for _ in range(2)]
        return torch.tensor([item, top, left, *flips], dtype=torch.int64)

    def cut(self, params: torch.Tensor, device: torch.device | str) -> torch.Tensor:
        """(B, 5) host parameters -> (B, C, image_size, image_size) float32 images cut on ``device``.

        The photos go to ``device`` once (kept per device); the parameters are read
        on the host, so nothing is read back from the device.
        """
        device = torch.device(device)
        if device not in self._on:
            self._on[device] = [p.to(device) for p in self.prepared]
        photos, size, out = self._on[device], self.image_size, []
        for item, top, left, flip_h, flip_v in params.tolist():
            crop = photos[item][:, top : top + size, left : left + size]
            dims = [d for d, f in ((-1, flip_h), (-2, flip_v)) if f]
            out.append(crop.flip(dims) if dims else crop)
        return torch.stack(out)

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
        device_crops: cut the training crops and flips on the trainer's device
            from photos decoded and sent there once (:class:`CropParams`): the
            loader yields 5 integers per image instead of pixels. The same
            images as on the host, seed for seed; validation is unchanged.
        val_tiles: number of validation tiles (int >= 2), i.e. val_tiles // 2 pairs.
        **common: see ``PairDataModule``.
    """

    def __init__(self, train_repeats: int = 64, val_tiles: int = 64, device_crops: bool = False,
                 **common: Any) -> None:
        super().__init__(**common)
        if not isinstance(device_crops, bool):
            raise ValueError(f"data.device_crops must be true or false, got {device_crops!r}")
        self.device_crops = device_crops
        _check_int("data.train_repeats", train_repeats, 1)
        _check_int("data.val_tiles", val_tiles, 2)
        self.train_repeats = train_repeats
        self.val_tiles = val_tiles

    def _build_datasets(self) -> tuple[StegPairs, StegPairs]:
        train_photos = [load_image(p, self.channels) for p in sample_photo_paths("train")]
        val_photos = [load_image(p, self.channels) for p in sample_photo_paths("val")]
        count = self.val_tiles if self.val_limit is None else min(self.val_tiles, self.val_limit)
        if self.device_crops:
            train = CropParams(train_photos, image_size=self.image_size, mode=self.mode, channels=self.channels,
                               pairing=self.pairing, flip=self.flip, train=True, repeats=self.train_repeats,
                               length=self.samples_per_epoch)
        else:
            train = self._pairs(train_photos, train=True, repeats=self.train_repeats)
        return train, self._val_pairs(val_photos, total=count)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Lightning's hook: a training batch of crop parameters is cut on ``device`` (see ``device_crops``)."""
        if isinstance(self.train_dataset, CropParams) and isinstance(batch, (list, tuple)) and len(batch) == 2 \
                and batch[0].dtype == torch.int64:
            return [self.train_dataset.cut(part, device) for part in batch]
        return super().transfer_batch_to_device(batch, device, dataloader_idx)
