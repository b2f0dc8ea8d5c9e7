"""Secret keys: from a passphrase or key file to a per-pixel key stream.

A key turns the hidden image into something only its holder can read back. The
chain is:

1. **Passphrase -> key** (:func:`derive_key`): ``hashlib.scrypt`` with
   ``n = 2**15, r = 8, p = 1`` (32 MiB of memory, about 0.1 s a guess on one CPU
   core) stretches the passphrase into 32 bytes, so that guessing a weak
   passphrase costs the attacker real work per guess. The salt is a fixed,
   public, per-purpose label (:data:`KDF_SALT`), not a random one: the receiver
   has nothing but the stego PNG and the passphrase, so there is nowhere to
   carry a random salt (a stego tool must not add a visible header). The
   price: the same passphrase gives the same key everywhere, and a guessing
   table can be built for this label. Use a long passphrase or, better, a key
   file of random bytes (``head -c 32 /dev/urandom > my.key``).
2. **Key -> stream** (:func:`key_stream`): ``hashlib.shake_256``, an
   extendable-output function, of the key and a label naming the purpose. Never
   Python's ``random`` or torch's seeded generators: their state is small and
   recoverable from their output, and their sequences change between versions.
3. **Stream -> tensors** (:func:`key_field`, :func:`keyed_dither`): a value per
   pixel, computed from (key, label, image size, channel, row) so that any
   window of an image can be generated on its own and tiles line up with the
   whole image. Binding the image size into the stream means that images of
   different sizes never share a stream (see ``docs/security.md`` for what
   reusing one key on images of the same size leaks).

Everything here is deterministic: the same key gives the same stream on any
machine, whatever the state of ``random`` or ``torch``'s RNG.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Union

import numpy as np
import torch

__all__ = [
    "KDF_SALT",
    "KDF_PARAMS",
    "KEY_BYTES",
    "NONCE_BYTES",
    "MAX_KEY_FILE_BYTES",
    "DerivedKey",
    "StegKeyError",
    "derive_key",
    "read_key_file",
    "resolve_key",
    "random_key",
    "key_stream",
    "key_field",
    "keyed_dither",
    "image_key",
    "Keys",
    "per_image",
]

#: Fixed salt of the passphrase KDF: public, one per purpose (see the module docstring).
KDF_SALT = b"steg/v1/passphrase-key"
#: scrypt cost parameters: 2**15 * 8 * 128 bytes = 32 MiB of memory a guess.
KDF_PARAMS = {"n": 2**15, "r": 8, "p": 1}
#: Length of a derived key.
KEY_BYTES = 32
#: Random bytes drawn for every image hidden with a key (96 bits: no collision in practice); every
#: keyed method (qim's dither, the default scrambling's image key, the digital method's cipher) uses it.
NONCE_BYTES = 12
#: Largest key file accepted (a key file holds a passphrase or random bytes, not data).
MAX_KEY_FILE_BYTES = 4096
#: Resolution of :func:`key_field`: 16 bits a value.
_FIELD_BITS = 16


class StegKeyError(ValueError):
    """A key that cannot be used: an empty passphrase, a missing, empty or oversized key file."""


class DerivedKey(bytes):
    """Key material that has been through the KDF (so it is not stretched again)."""

    def __repr__(self) -> str:  # never print key material
        return f"DerivedKey(<{len(self)} bytes>)"


def derive_key(passphrase: str | bytes, salt: bytes = KDF_SALT) -> DerivedKey:
    """Stretch a passphrase (str: UTF-8, or bytes) into a 32-byte key with scrypt.

    >>> derive_key("correct horse") == derive_key(b"correct horse")
    True
    >>> len(derive_key("correct horse"))
    32
    """
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    if not isinstance(passphrase, (bytes, bytearray)):
        raise TypeError(f"passphrase: expected str or bytes, got {type(passphrase).__name__}")
    if not passphrase:
        raise StegKeyError("empty key: expected a non-empty passphrase or key file")
    key = hashlib.scrypt(bytes(passphrase), salt=salt, dklen=KEY_BYTES, maxmem=64 * 2**20, **KDF_PARAMS)
    return DerivedKey(key)


def read_key_file(path: str | os.PathLike) -> DerivedKey:
    """Read a key file and derive its key: the file's bytes are the passphrase.

    One trailing newline (``\\n`` or ``\\r\\n``) is dropped, so that a file written
    by ``echo PASSPHRASE > FILE`` gives the same key as ``--key PASSPHRASE``.

    Raises:
        StegKeyError: one line naming the file: missing, a folder, unreadable, empty
            or larger than :data:`MAX_KEY_FILE_BYTES`.
    """
    path = Path(path)
    if not path.exists():
        raise StegKeyError(f"key file {path} not found (expected a file holding a passphrase or random bytes)")
    if not path.is_file():
        raise StegKeyError(f"key file {path} is not a file (expected a file holding a passphrase or random bytes)")
    size = path.stat().st_size
    if size > MAX_KEY_FILE_BYTES:
        raise StegKeyError(
            f"key file {path} is {size} bytes; expected at most {MAX_KEY_FILE_BYTES} "
            "(a passphrase or random bytes, e.g. head -c 32 /dev/urandom > FILE)"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StegKeyError(f"key file {path} cannot be read ({exc.strerror or exc})") from None
    for ending in (b"\r\n", b"\n"):
        if data.endswith(ending):
            data = data[: -len(ending)]
            break
    if not data:
        raise StegKeyError(f"key file {path} is empty (expected a passphrase or random bytes)")
    return derive_key(data)


def resolve_key(key: str | bytes | None) -> DerivedKey | None:
    """None stays None; a :class:`DerivedKey` is used as is; a str/bytes passphrase is derived."""
    if key is None or isinstance(key, DerivedKey):
        return key
    return derive_key(key)


def random_key() -> DerivedKey:
    """A fresh random key from the OS (for wrong-key tests and attackers' keys)."""
    return DerivedKey(os.urandom(KEY_BYTES))


def _prefix(key: bytes, label: str) -> "hashlib._Hash":
    """shake_256 fed with the length-prefixed key and label (unambiguous concatenation)."""
    if not isinstance(key, (bytes, bytearray)) or not key:
        raise TypeError(f"key: expected non-empty bytes (see steg.security.keys.derive_key), got {type(key).__name__}")
    label_bytes = label.encode("utf-8")
    h = hashlib.shake_256()
    h.update(struct.pack("<I", len(key)) + bytes(key))
    h.update(struct.pack("<I", len(label_bytes)) + label_bytes)
    return h


def key_stream(key: bytes, label: str, n: int) -> bytes:
    """``n`` pseudo-random bytes from ``key`` for the purpose ``label`` (shake_256).

    >>> key_stream(b"k", "demo", 4) == key_stream(b"k", "demo", 8)[:4]
    True
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return _prefix(key, label).digest(n)


def key_field(
    key: bytes,
    label: str,
    shape: tuple[int, int, int],
    rows: tuple[int, int] | None = None,
    width: int | None = None,
) -> torch.Tensor:
    """Per-pixel uniform values in [0, 1) for an image of ``shape`` = (C, H, W).

    Value (c, y, x) is 16 bits taken from bytes 2x..2x+1 of the shake_256 stream
    of (key, label, C, H, W, c, y), plus half a step: it depends only on these,
    so ``rows=(y0, y1)`` and ``width`` (columns 0..width-1; may exceed W, e.g.
    for padding) give any window of the same field. About 0.3 s for a 4096 x
    4096 RGB image.

    Returns:
        (C, y1 - y0, width) float32 tensor in (0, 1).
    """
    channels, height, full_width = (int(v) for v in shape)
    y0, y1 = rows if rows is not None else (0, height)
    width = full_width if width is None else int(width)
    base = _prefix(key, label)
    base.update(struct.pack("<III", channels, height, full_width))
    out = np.empty((channels, max(0, y1 - y0), width), dtype=np.float32)
    nbytes = 2 * width
    for c in range(channels):
        for i, y in enumerate(range(y0, y1)):
            h = base.copy()
            h.update(struct.pack("<II", c, y))
            out[c, i] = np.frombuffer(h.digest(nbytes), dtype="<u2")
    out += 0.5
    out *= 1.0 / (1 << _FIELD_BITS)
    return torch.from_numpy(out)


def keyed_dither(
    key: bytes,
    period: int,
    shape: tuple[int, int, int],
    rows: tuple[int, int] | None = None,
    width: int | None = None,
) -> torch.Tensor:
    """The keyed qim dither: uniform over the whole period, (C, rows, width) float32 in [0, period).

    Used by :class:`steg.nets.QIMNet` when a key is given: without the key, the
    stego pixels' residues modulo ``period`` are uniformly distributed whatever
    the secret. See :func:`key_field` for ``rows``/``width``.
    """
    return key_field(key, f"qim-dither/{int(period)}", shape, rows=rows, width=width) * float(period)


# --------------------------------------------------------------------------- #
# Per-image keys: one key, many images
# --------------------------------------------------------------------------- #


def image_key(key: bytes, nonce: bytes) -> DerivedKey:
    """The key that hides one image: shake_256 of the user's key and that image's nonce."""
    return DerivedKey(key_stream(key, "image-key/" + nonce.hex(), KEY_BYTES))


#: A key (bytes, e.g. a :class:`DerivedKey`) or one key per image of a batch.
Keys = Union[bytes, Sequence[bytes]]


def per_image(keys: Keys, batch: int) -> list[bytes]:
    """``keys`` (one key for a batch, or one per image) as one key per image of a batch of ``batch``.

    >>> per_image(b"k", 2)
    [b'k', b'k']
    """
    if isinstance(keys, (bytes, bytearray)):
        return [bytes(keys)] * batch
    keys = list(keys)
    if len(keys) != batch:
        raise ValueError(f"got {len(keys)} keys for a batch of {batch} images (expected one key, or one per image)")
    return keys
