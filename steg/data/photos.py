"""The embedded sample photographs, shipped inside scikit-image and matplotlib (no Lightning import).

``steg samples`` and the light inference path read these without importing
Lightning; :class:`steg.data.sample.SampleDataModule` trains on them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["SAMPLE_TRAIN_PHOTOS", "SAMPLE_VAL_PHOTOS", "sample_photo_paths"]


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
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    names = SAMPLE_TRAIN_PHOTOS if split == "train" else SAMPLE_VAL_PHOTOS
    skimage_dir = _skimage_data_dir()
    matplotlib_dir = _matplotlib_sample_dir() if any(n in _MATPLOTLIB_PHOTOS for n in names) else None
    paths = [(matplotlib_dir if name in _MATPLOTLIB_PHOTOS else skimage_dir) / name for name in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"embedded sample photo(s) not found: {', '.join(missing)}")
    return paths
