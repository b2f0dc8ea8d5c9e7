"""Files: finding, checking and loading images as 'RGB' or 'L', and writing any file atomically.

Shared by the training data (:mod:`steg.data`), training, reports and the
command line (:mod:`steg.cli`); it imports neither Lightning nor Hydra, so
``steg hide`` starts quickly. This is the one place for:

- :func:`write_atomic`: every file the project writes goes through it (a
  temporary file next to the target, fsync, rename), so a crash or Ctrl-C never
  leaves a half-written file;
- :func:`one_line`: the one-line error text the CLI and ``train.py`` print.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import struct
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm.auto import tqdm

__all__ = [
    "write_atomic",
    "FolderLockedError",
    "lock_folder",
    "write_bytes",
    "write_text",
    "save_image",
    "one_line",
    "IMAGE_EXTENSIONS",
    "ImageError",
    "ImageSource",
    "load_image",
    "to_tensor",
    "to_pil",
    "FIT_MODES",
    "fit_image",
    "square_image",
    "find_images",
    "check_images",
]

#: File name endings recognised as images (compared case-insensitively).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

# Modes whose pixel values are 16-bit integers (scaled to 8 bit by /257).
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
# Modes load_image can convert to 'RGB' / 'L'.
_SUPPORTED_MODES = {
    "1", "L", "P", "PA", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX",
    "CMYK", "YCbCr", "F",
} | _SIXTEEN_BIT_MODES

# Errors Pillow raises for broken files.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)

ImageSource = Union[str, Path, Image.Image]


class ImageError(ValueError):
    """An image file that cannot be used: missing, unreadable, too large or of an unsupported mode."""


# --------------------------------------------------------------------------- #
# Writing files atomically
# --------------------------------------------------------------------------- #


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, write: Callable[[str], None], suffix: str | None = None,
                 exclusive: bool = False) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, fsync it, then rename it to ``path``.

    The temporary file lives in the target's folder (a rename across file systems
    is not atomic), is hidden (``.name.*.tmp``) and gets the usual permissions
    (``0666 & ~umask``). A failure, Ctrl-C or kill leaves either the old ``path``
    or the new one, never a half-written file; the temporary file is removed on
    any Python-level failure. ``suffix``: the temporary file's ending, for
    writers that pick a format from it (Pillow); default ``.tmp``.

    ``exclusive``: publish with a hard link instead of a rename, which fails
    if ``path`` exists (even if another process made it after any earlier
    check): two writers never both succeed and neither output is lost.

    Raises:
        FileExistsError: ``exclusive`` and ``path`` exists (nothing is changed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private (0600)
        if exclusive:
            _publish_exclusive(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _publish_exclusive(tmp: str, path: Path) -> None:
    """Give the finished ``tmp`` the name ``path`` unless ``path`` exists (atomically), then drop ``tmp``."""
    try:
        os.link(tmp, path)  # atomic, and fails with FileExistsError if path exists
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "exists (another process wrote it meanwhile)", str(path)) from None
    except OSError:  # a file system without hard links: O_EXCL claims the name, then the rename fills it
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~_umask())
        os.close(fd)
        os.replace(tmp, path)
        return
    os.unlink(tmp)


#: Name of the lock file :func:`lock_folder` keeps in a folder.
LOCK_NAME = ".lock"


class FolderLockedError(RuntimeError):
    """A folder another process holds with :func:`lock_folder`; the message is one line."""


@contextlib.contextmanager
def lock_folder(folder: str | os.PathLike, what: str = "folder") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if needed) while the block runs.

    The lock is ``flock`` on ``folder/.lock``, released by the kernel when the
    process ends however it ends (so a killed run leaves no stale lock). A
    folder this call created that holds only the lock file at the end is
    removed. Where ``fcntl`` is missing (Windows) nothing is locked.

    Raises:
        FolderLockedError: at once, if another process holds it (naming its pid).
    """
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield folder
        return
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise FolderLockedError(
                f"{what} {folder} is in use by another process (pid {holder}); wait for it to end or choose another"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        try:
            yield folder
        finally:
            if created and [p.name for p in folder.iterdir()] == [LOCK_NAME]:  # nothing was written
                (folder / LOCK_NAME).unlink(missing_ok=True)
                folder.rmdir()
    finally:
        os.close(fd)  # releases the lock


def write_bytes(path: str | os.PathLike, data: bytes, exclusive: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`write_atomic`, also for ``exclusive``)."""
    return write_atomic(path, lambda tmp: Path(tmp).write_bytes(data), exclusive=exclusive)


def json_safe(value: Any, bad: list[str] | None = None, path: str = "") -> Any:
    """``value`` with NaN and infinities turned into None, recursively (JSON has neither).

    The key paths of the replaced values are appended to ``bad`` (if given), for a report
    that says which figures were not finite. The one JSON sanitiser of steg.

    >>> bad = []; json_safe({"a": float("inf"), "b": [1.0, float("nan")]}, bad), bad
    ({'a': None, 'b': [1.0, None]}, ['a', 'b[1]'])
    """
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if bad is not None:
            bad.append(path)
        return None
    if isinstance(value, dict):
        return {k: json_safe(v, bad, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, bad, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def write_text(path: str | os.PathLike, text: str, exclusive: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`write_atomic`, also for ``exclusive``)."""
    return write_bytes(path, text.encode("utf-8"), exclusive=exclusive)


def save_image(img: Image.Image, path: str | os.PathLike, exclusive: bool = False, **kwargs) -> Path:
    """Save a PIL image atomically; the format follows ``path``'s ending (or ``format=``).

    ``exclusive``: fail with FileExistsError rather than replace an existing ``path`` (:func:`write_atomic`).
    """
    path = Path(path)
    return write_atomic(path, lambda tmp: img.save(tmp, **kwargs), suffix=path.suffix, exclusive=exclusive)


# --------------------------------------------------------------------------- #
# Image loading
# --------------------------------------------------------------------------- #


def one_line(exc: BaseException | str, limit: int | None = None, with_type: bool = True) -> str:
    """``exc`` as one line: whitespace folded, optionally cut at ``limit`` characters, prefixed by its type.

    >>> one_line(ValueError("bad\\n  value"))
    'ValueError: bad value'
    >>> one_line("a   b")
    'a b'
    """
    text = " ".join(str(exc).split())
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    if isinstance(exc, BaseException) and with_type:
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text




def _convert_mode(img: Image.Image, channels: int | None = 3) -> Image.Image:
    """Convert a PIL image of any supported mode to 'RGB' (channels=3) or 'L' (channels=1).

    ``channels=None``: to whichever of 'RGB' and 'L' the image is closest to.

    Transparency is composited over white, 16-bit values are scaled by 1/257,
    'F' values are taken to lie in [0, 1], grey is replicated to RGB, and RGB
    becomes 'L' with ITU-R 601 luma. Raises ``ImageError`` for other modes.
    """
    mode = img.mode
    if mode not in _SUPPORTED_MODES:
        raise ImageError(f"unsupported image mode {mode!r}")
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(img).astype(np.float64) / 257.0
        img = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")
    elif mode == "F":
        values = np.asarray(img, dtype=np.float64) * 255.0
        values = np.nan_to_num(values, nan=0.0)
        img = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")
    elif mode == "1":
        img = img.convert("L")
    elif mode == "La":
        img = img.convert("LA").convert("RGBA")
    elif mode in ("P", "PA", "LA", "RGBa") or (
        mode in ("L", "RGB") and "transparency" in img.info
    ):
        img = img.convert("RGBA")
    elif mode in ("CMYK", "YCbCr", "RGBX"):
        img = img.convert("RGB")

    if img.mode == "RGBA":
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img).convert("RGB")

    if channels == 3 and img.mode == "L":
        img = img.convert("RGB")
    elif channels == 1 and img.mode == "RGB":
        img = img.convert("L")
    return img


def load_image(path: str | Path, channels: int | None = 3, max_pixels: int | None = None) -> Image.Image:
    """Load an image file as an 'RGB' (channels=3) or 'L' (channels=1) PIL image.

    ``channels=None`` keeps a grey image 'L' and gives anything else as 'RGB'.

    EXIF orientation is applied. RGBA/LA/palette-with-transparency images are
    composited over a white background; palette and CMYK become RGB; 16-bit
    grey ('I;16*', 'I') is scaled to 8 bit (value / 257); 'F' is assumed to
    lie in [0, 1]; grey is replicated to RGB for channels=3; RGB becomes ITU-R
    601 luma for channels=1.

    ``max_pixels``: refuse, from the header and before decoding, an image of
    more pixels (a caller whose memory grows with the image bounds it so).

    Raises:
        ImageError: one-line message naming the file, for a missing,
            unreadable or corrupt file, a decompression bomb (more pixels
            than ``PIL.Image.MAX_IMAGE_PIXELS``), an image over ``max_pixels``
            or an unsupported mode.
    """
    if channels not in (1, 3, None):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    path = Path(path)
    if not path.exists():
        raise ImageError(f"cannot load image {path}: file not found")
    if not path.is_file():
        raise ImageError(f"cannot load image {path}: not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if max_pixels is not None and img.width * img.height > max_pixels:
                    raise ImageError(f"{img.width}x{img.height} is {img.width * img.height / 1e6:.1f} megapixels, "
                                     f"over the {max_pixels / 1e6:.1f} this command takes (its memory grows with "
                                     "the image); resize it first")
                img.load()
                ImageOps.exif_transpose(img, in_place=True)
                return _convert_mode(img, channels)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            f"cannot load image {path}: too large, decompression bomb guard "
            f"(PIL.Image.MAX_IMAGE_PIXELS={Image.MAX_IMAGE_PIXELS}): {one_line(exc)}"
        ) from exc
    except ImageError as exc:
        raise ImageError(f"cannot load image {path}: {exc}") from exc
    except _DECODE_ERRORS as exc:
        raise ImageError(f"cannot load image {path}: unreadable or corrupt ({one_line(exc)})") from exc


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL 'RGB' or 'L' image -> float32 tensor (C, H, W) in [0, 1] (C = 3 or 1)."""
    if img.mode not in ("RGB", "L"):
        raise ValueError(f"to_tensor expects an 'RGB' or 'L' image, got mode {img.mode!r}")
    array = np.asarray(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.transpose(2, 0, 1).copy()).float().div_(255.0)


def to_pil(x: torch.Tensor) -> Image.Image:
    """(C, H, W) float tensor in [0, 1] (clamped, rounded to 8 bits) -> 'RGB' (C=3) or 'L' (C=1) PIL image."""
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"to_pil expects a (1 or 3, H, W) tensor, got shape {tuple(x.shape)}")
    arr = x.detach().to("cpu", torch.float32).clamp(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
    if arr.shape[0] == 1:
        return Image.fromarray(arr[0].numpy(), mode="L")
    return Image.fromarray(arr.permute(1, 2, 0).contiguous().numpy(), mode="RGB")


#: How an image is fitted to another size: "resize" (aspect ratio not kept) or "crop" (centre).
FIT_MODES = ("resize", "crop")


def fit_image(img: Image.Image, size: tuple[int, int], fit: str = "resize") -> Image.Image:
    """Fit a PIL image to ``size`` = (width, height), bicubic.

    "resize": resize to exactly ``size`` (aspect ratio not kept). "crop":
    ``ImageOps.fit``: the largest centred region with ``size``'s aspect ratio,
    resized to ``size``. Tensors are fitted through this too (:mod:`steg.inference.model`),
    so PIL and tensor inputs give the same pixels.
    """
    if fit not in FIT_MODES:
        raise ValueError(f"fit must be one of {', '.join(FIT_MODES)}, got {fit!r}")
    size = (int(size[0]), int(size[1]))
    if img.size == size:
        return img
    if fit == "resize":
        return img.resize(size, Image.Resampling.BICUBIC)
    return ImageOps.fit(img, size, Image.Resampling.BICUBIC)


def square_image(img: Image.Image, side: int) -> Image.Image:
    """The centred ``side`` x ``side`` square of ``img``, resized (bicubic): ``fit_image(img, (side, side), "crop")``."""
    return fit_image(img, (side, side), "crop")


def _is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def find_images(root: str | Path, recursive: bool = True) -> list[Path]:
    """Sorted paths of the image files (``IMAGE_EXTENSIONS``) under ``root``.

    Hidden files and folders (names starting with '.', e.g. macOS '._x.png')
    are ignored. A ``root`` that is itself an image file gives ``[root]``.

    Raises:
        FileNotFoundError: ``root`` does not exist.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    if root.is_file():
        return [root] if _is_image_file(root) else []
    candidates = root.rglob("*") if recursive else root.iterdir()
    found = [
        path
        for path in candidates
        if _is_image_file(path)
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
        and path.is_file()
    ]
    return sorted(found)


def _check_one(path: Path) -> bool:
    """Cheap validity check of one image file (no full decode where avoidable)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.mode not in _SUPPORTED_MODES:
                    return False
                if img.format == "PNG":
                    img.verify()  # chunk CRCs up to IEND: catches truncation
                elif img.format == "JPEG":
                    img.draft("RGB", (64, 64))  # DCT-scaled decode of the whole stream
                    img.load()
                else:
                    img.load()
        return True
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, *_DECODE_ERRORS):
        return False


def check_images(paths: Sequence[str | Path]) -> tuple[list[Path], list[Path]]:
    """Split ``paths`` into ``(good, bad)`` with a fast validity check.

    PNG: ``verify()``; JPEG: decode at reduced size (catches truncation);
    other formats: full ``load()``. Files that are missing, corrupt,
    decompression bombs or of an unsupported mode are bad. A progress bar is
    shown for more than 200 files. Order is preserved.
    """
    good: list[Path] = []
    bad: list[Path] = []
    for path in tqdm(paths, desc="checking images", unit="img", disable=len(paths) <= 200):
        path = Path(path)
        (good if _check_one(path) else bad).append(path)
    return good, bad


def _warn_skipped(bad: Sequence[Path], root: Path) -> None:
    """One warning for all unreadable files under ``root``: count and the first 3 paths."""
    if not bad:
        return
    names = []
    for path in bad[:3]:
        try:
            names.append(str(path.relative_to(root)))
        except ValueError:
            names.append(str(path))
    more = ", ..." if len(bad) > 3 else ""
    warnings.warn(
        f"skipped {len(bad)} unreadable image(s) under {root}: {', '.join(names)}{more}",
        stacklevel=3,
    )
