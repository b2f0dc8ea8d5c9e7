"""The container: nonce, encrypted header, encrypted and authenticated payload; keyed positions.

Everything secret comes from :mod:`steg.security.keys` (scrypt for passphrases, SHAKE-256
key streams); nothing here uses ``random`` or numpy's / torch's seeded
generators. The only randomness is the per-image nonce, from ``os.urandom``.

* ``K``: the user's derived key, or :data:`PUBLIC_KEY` when no key is given (so
  that hiding without a key still works, like an unkeyed model: anyone can reveal).
* ``nonce``: :data:`NONCE_BYTES` fresh random bytes per image, stored in the stego image.
* ``IK = image_key(K, nonce)``: encrypts the header and the payload and orders the
  payload's positions, so that one key can hide many images.

Header (:data:`HEADER_BYTES` = 32 bytes, little-endian, XORed with the key stream
``(IK, "digital/header")``):

======  =====  ===============================================================
offset  bytes  field
======  =====  ===============================================================
0       1      format version (:data:`VERSION`)
1       1      codec id (:data:`steg.digital.codec.CODECS`)
2       1      codec parameter (quality or quantisation step)
3       1      channel: 0 = +-1 STC, 1-3 = bits per value (capacity), 8 = robust
4       4      secret width, height (uint16 each)
8       4      coded width, height (uint16 each)
12      4      payload length in bytes (uint32), before the MAC
16      8      key check: keyed BLAKE2b of (nonce, bytes 0-15, 24-31) under K
24      8      reserved (zero)
======  =====  ===============================================================

Payload: the coded secret XORed with the key stream ``(IK, "digital/payload")``,
followed by a 16-byte BLAKE2b MAC under IK of (header, ciphertext). A wrong key
fails the key check (the caller then shows noise); the right key with a failing
MAC means the stego image was changed (the caller raises :class:`DigitalError`).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

import numpy as np

from steg.security.keys import NONCE_BYTES, DerivedKey, image_key, key_stream, resolve_key

__all__ = [
    "VERSION", "HEADER_BYTES", "MAC_BYTES", "NONCE_BYTES", "PUBLIC_KEY", "DigitalError", "Header",
    "user_key", "keyed_permutation", "encrypt_header", "decrypt_header", "seal", "open_sealed", "bits", "unbits",
]

VERSION = 1
HEADER_BYTES = 32
MAC_BYTES = 16
CHECK_BYTES = 8
#: The key used when none is given: public (anyone can reveal), so hiding without --key works.
PUBLIC_KEY = DerivedKey(hashlib.sha256(b"steg/digital/public-key/v1").digest())


class DigitalError(ValueError):
    """A user-facing error of the digital method (one line): overflow, corrupted stego image, bad option."""


@dataclass(frozen=True)
class Header:
    """The plaintext header fields (see the module docstring)."""

    codec: int
    param: int
    channel: int
    size: tuple[int, int]  # secret (W, H)
    coded_size: tuple[int, int]  # coded image (W, H)
    length: int  # payload bytes before the MAC

    def fields(self) -> bytes:
        """Bytes 0-15 of the header."""
        for v in (*self.size, *self.coded_size):
            if not 0 <= v < 1 << 16:
                raise DigitalError(f"image side {v} is too large for the digital method (at most 65535)")
        return struct.pack("<BBBBHHHHI", VERSION, self.codec, self.param, self.channel,
                           *self.size, *self.coded_size, self.length)


def user_key(key) -> DerivedKey:
    """``key`` (None, passphrase str/bytes, :class:`DerivedKey`) -> the derived key; None -> :data:`PUBLIC_KEY`."""
    return PUBLIC_KEY if key is None else resolve_key(key)


def keyed_permutation(key: bytes, label: str, n: int) -> np.ndarray:
    """A permutation of range(n) (int64) from the key stream: argsort of n 64-bit keyed values."""
    raw = key_stream(key, f"{label}/{n}", 8 * n)
    return np.argsort(np.frombuffer(raw, dtype="<u8"), kind="stable").astype(np.int64)


def _check(key: bytes, nonce: bytes, fields: bytes, reserved: bytes) -> bytes:
    return hashlib.blake2b(nonce + fields + reserved, key=bytes(key), digest_size=CHECK_BYTES,
                           person=b"steg-dg-check").digest()


def encrypt_header(key: bytes, nonce: bytes, header: Header) -> bytes:
    """The 32 encrypted header bytes for ``header`` under the user key ``key`` and ``nonce``."""
    fields = header.fields()
    reserved = bytes(HEADER_BYTES - 16 - CHECK_BYTES)
    plain = fields + _check(key, nonce, fields, reserved) + reserved
    stream = key_stream(image_key(key, nonce), "digital/header", HEADER_BYTES)
    return bytes(a ^ b for a, b in zip(plain, stream))


def decrypt_header(key: bytes, nonce: bytes, data: bytes) -> Header | None:
    """The header from its 32 encrypted bytes, or None when the key check fails (wrong key, nothing hidden)."""
    stream = key_stream(image_key(key, nonce), "digital/header", HEADER_BYTES)
    plain = bytes(a ^ b for a, b in zip(data, stream))
    fields, check, reserved = plain[:16], plain[16:16 + CHECK_BYTES], plain[16 + CHECK_BYTES:]
    if not hmac.compare_digest(check, _check(key, nonce, fields, reserved)):
        return None
    version, codec, param, channel, w, h, cw, ch, length = struct.unpack("<BBBBHHHHI", fields)
    if version != VERSION:
        raise DigitalError(f"the stego image was written by digital format version {version}; this steg reads "
                           f"version {VERSION}")
    return Header(codec, param, channel, (w, h), (cw, ch), length)


def _mac(ikey: bytes, header: bytes, cipher: bytes) -> bytes:
    return hashlib.blake2b(header + cipher, key=bytes(ikey), digest_size=MAC_BYTES, person=b"steg-dg-mac").digest()


def seal(key: bytes, nonce: bytes, enc_header: bytes, payload: bytes) -> bytes:
    """Encrypt ``payload`` under image_key(key, nonce) and append its MAC: len(payload) + 16 bytes."""
    ikey = image_key(key, nonce)
    stream = np.frombuffer(key_stream(ikey, "digital/payload", len(payload)), dtype=np.uint8)
    cipher = (np.frombuffer(payload, dtype=np.uint8) ^ stream).tobytes()
    return cipher + _mac(ikey, enc_header, cipher)


def open_sealed(key: bytes, nonce: bytes, enc_header: bytes, sealed: bytes) -> bytes:
    """The payload from :func:`seal`'s bytes; :class:`DigitalError` (one line) when the MAC fails."""
    ikey = image_key(key, nonce)
    cipher, mac = sealed[:-MAC_BYTES], sealed[-MAC_BYTES:]
    if len(sealed) < MAC_BYTES or not hmac.compare_digest(mac, _mac(ikey, enc_header, cipher)):
        raise DigitalError("the stego image carries a payload for this key, but it has been changed or cut "
                           "(integrity check failed): keep stego images as the original lossless PNG")
    stream = np.frombuffer(key_stream(ikey, "digital/payload", len(cipher)), dtype=np.uint8)
    return (np.frombuffer(cipher, dtype=np.uint8) ^ stream).tobytes()


def bits(data: bytes) -> np.ndarray:
    """Bytes -> bits (8 * len,) uint8, least significant bit of each byte first."""
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")


def unbits(b: np.ndarray) -> bytes:
    """Bits (8k,) -> k bytes (inverse of :func:`bits`)."""
    return np.packbits(np.asarray(b, dtype=np.uint8), bitorder="little").tobytes()
