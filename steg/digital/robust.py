"""The JPEG-robust channel: dither modulation of mid-frequency luma DCT coefficients, with Reed-Solomon.

A JPEG encoder at quality Q rounds every 8x8 DCT coefficient of the luma to a
multiple of its quantisation step (the standard table scaled for Q: steps 2-5
for the low and mid frequencies at Q = 90). A bit written as the residue of a
coefficient on a lattice of step :data:`DELTA` (quantisation-index modulation
with a keyed dither, Chen and Wornell 2001) survives as long as JPEG moves the
coefficient by less than DELTA / 4.

* Slots: the :data:`COEFFICIENTS` (``(row, column)`` of the 8x8 DCT: low and mid
  frequencies whose Q = 90 step is at most 5: 19 a block) of every whole 8x8 block of the
  luma Y = 0.299 R + 0.587 G + 0.114 B, shuffled by a key-only permutation.
* Writing: the coefficients are moved to the nearest lattice point of their bit;
  the luma change is added to R, G and B alike (so Cb and Cr do not change), the
  image rounded to 8 bits and the process repeated (:data:`ITERATIONS`) so that
  rounding and clipping do not undo it.
* Head: nonce and encrypted header (44 bytes) plus :data:`HEAD_NSYM` Reed-Solomon
  symbols, in the first slots, dithered by the key alone.
* Payload: ciphertext and MAC cut into Reed-Solomon codewords of 255 bytes with
  :data:`NSYM` parity bytes each (the last one shortened), the codewords'
  bytes interleaved (byte j of every codeword, then byte j + 1), dithered by
  the image key. ``reedsolo`` corrects up to NSYM / 2 wrong bytes a codeword.

Images are (H, W, 3) uint8 arrays; only whole 8x8 blocks carry bits.
"""

from __future__ import annotations

import numpy as np

from steg.digital.cipher import HEADER_BYTES, NONCE_BYTES, DigitalError, bits, keyed_permutation, unbits
from steg.security.keys import image_key, key_stream

__all__ = [
    "DELTA", "NSYM", "HEAD_NSYM", "COEFFICIENTS", "ITERATIONS", "slots", "capacity_bytes", "embed_robust",
    "read_robust_head", "read_robust_payload", "rs_encode", "rs_decode", "qim_embed", "qim_read",
]

#: Lattice step of the dither modulation (8-bit luma levels, orthonormal DCT).
DELTA = 14.0
#: Reed-Solomon parity bytes per 255-byte codeword of the payload (corrects NSYM // 2 bytes).
NSYM = 64
#: Reed-Solomon parity bytes of the 44-byte head.
HEAD_NSYM = 44
#: Passes of write, round, re-measure.
ITERATIONS = 4
_HEAD_BYTES = NONCE_BYTES + HEADER_BYTES
_LUMA = np.array([0.299, 0.587, 0.114])
#: The JPEG standard luminance quantisation table (ITU T.81, K.1), row by row.
_JPEG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]).reshape(8, 8)


def _q90() -> np.ndarray:
    return np.maximum(1, (_JPEG_LUMA * 20 + 50) // 100)


#: (row, column) of the coefficients that carry bits: not DC, row + column <= 6, quality-90 step <= 5 (19 of 64).
COEFFICIENTS = tuple((u, v) for u in range(8) for v in range(8) if 1 <= u + v <= 6 and _q90()[u, v] <= 5)


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    m = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 16) * np.sqrt(2 / 8)
    m[0] /= np.sqrt(2)
    return m


_D = _dct_matrix()


def _blocks(y: np.ndarray) -> np.ndarray:
    """(H, W) -> (nb, 8, 8) whole blocks in raster order."""
    h8, w8 = y.shape[0] // 8, y.shape[1] // 8
    return y[: 8 * h8, : 8 * w8].reshape(h8, 8, w8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)


def _coefficients(img: np.ndarray) -> np.ndarray:
    """The slot coefficients of an (H, W, 3) image: (nb * len(COEFFICIENTS),) float64, block-major."""
    y = img.astype(np.float64) @ _LUMA - 128.0
    c = _D @ _blocks(y) @ _D.T
    u, v = np.array(COEFFICIENTS).T
    return c[:, u, v].reshape(-1)


def slots(shape: tuple[int, ...]) -> int:
    """Number of bit slots of an (H, W, ...) image."""
    return (shape[0] // 8) * (shape[1] // 8) * len(COEFFICIENTS)


def _luma_delta(shape: tuple[int, ...], delta: np.ndarray) -> np.ndarray:
    """(H, W) luma change whose slot coefficients change by ``delta`` (slot order), others by 0."""
    h8, w8 = shape[0] // 8, shape[1] // 8
    c = np.zeros((h8 * w8, 8, 8))
    u, v = np.array(COEFFICIENTS).T
    c[:, u, v] = delta.reshape(h8 * w8, len(COEFFICIENTS))
    blocks = _D.T @ c @ _D
    out = np.zeros(shape[:2])
    out[: 8 * h8, : 8 * w8] = blocks.reshape(h8, w8, 8, 8).transpose(0, 2, 1, 3).reshape(8 * h8, 8 * w8)
    return out


def _dither(key: bytes, label: str, n: int, delta: float) -> np.ndarray:
    return (np.frombuffer(key_stream(key, label, 2 * n), dtype="<u2") + 0.5) / 65536.0 * delta


def qim_embed(c: np.ndarray, b: np.ndarray, dither: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """Coefficients moved to the nearest point of the lattice ``delta * Z + dither + b * delta / 2``."""
    offset = dither + b * (delta / 2)
    return np.round((c - offset) / delta) * delta + offset


def qim_read(c: np.ndarray, dither: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """Bits (uint8) read from coefficients by the nearest half-lattice point."""
    return (np.round((c - dither) / (delta / 2)).astype(np.int64) % 2).astype(np.uint8)


def _rs(nsym: int):
    from reedsolo import RSCodec

    return RSCodec(nsym)


def _codewords(nbytes: int, nsym: int) -> list[int]:
    """Data bytes of each codeword for a message of ``nbytes`` (255 - nsym each, the last shorter)."""
    k = 255 - nsym
    return [k] * (nbytes // k) + ([nbytes % k] if nbytes % k else [])


def rs_encode(data: bytes, nsym: int = NSYM) -> bytes:
    """Reed-Solomon codewords of ``data``, their bytes interleaved: len(data) + nsym * codewords bytes."""
    rs = _rs(nsym)
    words, pos = [], 0
    for k in _codewords(len(data), nsym):
        words.append(bytes(rs.encode(data[pos : pos + k])))
        pos += k
    longest = max(len(w) for w in words)
    return bytes(w[j] for j in range(longest) for w in words if j < len(w))


def rs_decode(coded: bytes, nbytes: int, nsym: int = NSYM) -> bytes | None:
    """The ``nbytes`` data bytes of :func:`rs_encode`'s output (errors corrected), or None if too damaged."""
    from reedsolo import ReedSolomonError

    rs = _rs(nsym)
    sizes = [k + nsym for k in _codewords(nbytes, nsym)]
    words = [bytearray() for _ in sizes]
    it = iter(coded)
    for j in range(max(sizes)):
        for w, size in zip(words, sizes):
            if j < size:
                w.append(next(it))
    out = bytearray()
    try:
        for w in words:
            out += rs.decode(w)[0]
    except ReedSolomonError:
        return None
    return bytes(out)


def coded_bytes(nbytes: int, nsym: int = NSYM) -> int:
    """Bytes that :func:`rs_encode` makes of ``nbytes``."""
    return nbytes + nsym * len(_codewords(nbytes, nsym))


def _head_slots() -> int:
    return 8 * (_HEAD_BYTES + HEAD_NSYM)


def capacity_bytes(shape: tuple[int, ...]) -> int:
    """Largest sealed payload (ciphertext + MAC) in bytes that an (H, W, 3) image carries."""
    free = (slots(shape) - _head_slots()) // 8
    k = 255 - NSYM
    full, rest = divmod(max(free, 0), 255)
    return full * k + max(0, rest - NSYM)


def embed_robust(cover: np.ndarray, key: bytes, nonce: bytes, enc_header: bytes, sealed: bytes,
                 delta: float = DELTA, iterations: int = ITERATIONS) -> np.ndarray:
    """The stego image (H, W, 3) uint8 carrying the head and the sealed payload in the DCT slots."""
    n = slots(cover.shape)
    if len(sealed) > capacity_bytes(cover.shape):
        raise DigitalError(f"payload of {len(sealed)} bytes does not fit the {capacity_bytes(cover.shape)} bytes "
                           "of this cover's robust channel")
    order = keyed_permutation(key, "digital/robust-slots", n)
    head = bits(bytes(_rs(HEAD_NSYM).encode(nonce + enc_header)))
    body = bits(rs_encode(sealed))
    hs = len(head)
    where = order[: hs + len(body)]
    message = np.concatenate([head, body])
    dither = np.concatenate([_dither(key, "digital/robust-head", hs, delta),
                             _dither(image_key(key, nonce), "digital/robust-body", len(body), delta)])
    target = qim_embed(_coefficients(cover)[where], message, dither, delta)
    img = cover.astype(np.float64)
    stego = cover
    for _ in range(iterations):
        error = np.zeros(n)
        error[where] = target - _coefficients(stego)[where]
        img = img + _luma_delta(cover.shape, error)[..., None]
        stego = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return stego


def read_robust_head(stego: np.ndarray, key: bytes) -> tuple[bytes, bytes] | None:
    """(nonce, encrypted header), or None when the head's Reed-Solomon code fails (wrong key, nothing hidden)."""
    from reedsolo import ReedSolomonError

    n = slots(stego.shape)
    hs = _head_slots()
    if n < hs:
        return None
    order = keyed_permutation(key, "digital/robust-slots", n)
    got = qim_read(_coefficients(stego)[order[:hs]], _dither(key, "digital/robust-head", hs, DELTA))
    try:
        head = bytes(_rs(HEAD_NSYM).decode(unbits(got))[0])
    except ReedSolomonError:
        return None
    return head[:NONCE_BYTES], head[NONCE_BYTES:]


def read_robust_payload(stego: np.ndarray, key: bytes, nonce: bytes, nbytes: int) -> bytes:
    """The ``nbytes`` sealed bytes; :class:`DigitalError` when too many bytes are wrong to correct."""
    n = slots(stego.shape)
    hs = _head_slots()
    coded = coded_bytes(nbytes)
    if hs + 8 * coded > n:
        raise DigitalError(f"the header announces {nbytes} bytes, more than this {stego.shape[1]}x{stego.shape[0]} "
                           "image holds: the stego image was cut or resized")
    order = keyed_permutation(key, "digital/robust-slots", n)
    where = order[hs : hs + 8 * coded]
    got = qim_read(_coefficients(stego)[where], _dither(image_key(key, nonce), "digital/robust-body", 8 * coded, DELTA))
    data = rs_decode(unbits(got), nbytes)
    if data is None:
        raise DigitalError("the stego image carries a payload for this key, but too much of it was destroyed to "
                           "correct (stronger compression or editing than the robust profile withstands)")
    return data
