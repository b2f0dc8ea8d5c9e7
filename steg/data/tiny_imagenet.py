"""Tiny ImageNet (64x64 images in 200 classes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steg.data.pairs import PairDataModule, StegPairs, _need_images, _scan_folder
from steg.io import _is_image_file, _warn_skipped, check_images

__all__ = ["TinyImageNetDataModule"]


class TinyImageNetDataModule(PairDataModule):
    """Tiny ImageNet: ``root/train/<wnid>/images/*.JPEG`` and ``root/val/images/*.JPEG``.

    The images are 64x64, so the default crop mode at image_size 64 uses the
    whole image (one validation tile per image).

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
        return self._pairs(train, train=True), self._val_pairs(self._limit_val(val))
