"""Any folder tree of images."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from steg.data.pairs import PairDataModule, StegPairs, _need_images, _scan_folder
from steg.io import IMAGE_EXTENSIONS

__all__ = ["FolderDataModule"]

_FOLDER_LAYOUT = "expected a folder of " + "/".join(IMAGE_EXTENSIONS) + " images, searched recursively"


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
        return self._pairs(train, train=True), self._val_pairs(self._limit_val(val))
