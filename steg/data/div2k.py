"""DIV2K high-resolution images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steg.data.pairs import PairDataModule, StegPairs, _need_images, _scan_folder

__all__ = ["DIV2KDataModule"]


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
        return self._pairs(train, train=True), self._val_pairs(self._limit_val(val))
