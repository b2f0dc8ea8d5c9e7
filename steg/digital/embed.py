"""Spatial embedding: where the bits go in a lossless (PNG) stego image, and how they are written.

All 8-bit values of the cover (H, W, C), flattened in (row, column, channel)
order, are shuffled by a key-only permutation (:func:`layout`). Its first
``segment`` values carry the **head**: the nonce and the encrypted header
(44 bytes, 352 bits), repeated :data:`REPEAT` times (majority vote on reading, so
that a few damaged pixels do not lose the header), written with a fixed-rate
syndrome-trellis code (:mod:`steg.digital.stc`) under the same HILL costs as the
payload. The head must be read before the payload's length is known, so its
segment has a size that depends on the cover size only. The remaining values
are shuffled again under the image key and carry the **payload** (ciphertext and
MAC):

* channel 0 (``+-1 STC``): the least significant bits of all remaining values
  form the STC cover; the syndrome is the payload. A changed value moves by +1
  or -1: the direction that stays in [0, 255], else one drawn from the image
  key's stream (as in LSB matching). Every value changes by at most 1.
* channel b = 1..3 (``capacity``): value i carries b payload bits as its residue
  modulo 2**b, set by the nearest value with that residue inside [0, 255]
  (changes of up to 2**(b-1)).
"""

from __future__ import annotations

import numpy as np

from steg.digital.cipher import HEADER_BYTES, NONCE_BYTES, DigitalError, bits, keyed_permutation, unbits
from steg.digital.stc import DEFAULT_HEIGHT, stc_embed, stc_extract
from steg.security.keys import image_key, key_stream

__all__ = [
    "REPEAT", "HEAD_BITS", "SEGMENT_WIDTH", "layout", "payload_capacity", "plus_minus_one", "embed_residue",
    "read_residue", "embed_spatial", "read_head", "read_payload",
]

#: Copies of the head (majority vote).
REPEAT = 3
#: Bits of (nonce, encrypted header), written REPEAT times.
HEAD_BITS = 8 * (NONCE_BYTES + HEADER_BYTES)
#: Cover values per head bit (the head's STC rate is 1 / SEGMENT_WIDTH where the cover is large enough).
SEGMENT_WIDTH = 8


def _segment(n: int) -> int:
    coded = REPEAT * HEAD_BITS
    if n < 2 * coded:
        raise DigitalError(f"the cover is too small for the digital method: it has {n} values, at least "
                           f"{2 * coded} are needed (e.g. {int(np.ceil(np.sqrt(2 * coded / 3)))}x"
                           f"{int(np.ceil(np.sqrt(2 * coded / 3)))} RGB)")
    return max(coded, min(SEGMENT_WIDTH * coded, n // 4))


def layout(key: bytes, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(head positions, payload positions before the image-key shuffle) among n values: two int64 arrays."""
    perm = keyed_permutation(key, "digital/positions", n)
    seg = _segment(n)
    return perm[:seg], perm[seg:]


def payload_capacity(n: int, channel: int, rate: float = 1.0) -> int:
    """Payload bits (ciphertext + MAC) that n cover values hold: ``rate`` bits a value (channel 0) or ``channel`` bits."""
    rest = n - _segment(n)
    return int(np.floor(rate * rest)) if channel == 0 else channel * rest


def _payload_positions(key: bytes, nonce: bytes, rest: np.ndarray) -> np.ndarray:
    return rest[keyed_permutation(image_key(key, nonce), "digital/payload-positions", len(rest))]


def plus_minus_one(values: np.ndarray, new_lsb: np.ndarray, key: bytes, label: str) -> np.ndarray:
    """Values (uint8) moved by +-1 where their LSB differs from ``new_lsb``: in range, else a keyed direction."""
    v = values.astype(np.int16)
    change = (v & 1) != new_lsb
    coin = bits(key_stream(key, label, (len(v) + 7) // 8))[: len(v)].astype(np.int16) * 2 - 1
    step = np.where(v == 0, 1, np.where(v == 255, -1, coin))
    return np.where(change, v + step, v).astype(np.uint8)


def embed_residue(values: np.ndarray, payload_bits: np.ndarray, b: int) -> np.ndarray:
    """Values (k,) uint8 whose residues modulo 2**b spell ``payload_bits`` (b bits a value, low bit first)."""
    q = 1 << b
    k = len(values)
    padded = np.zeros(k * b, dtype=np.int64)
    padded[: len(payload_bits)] = payload_bits
    target = (padded.reshape(k, b) << np.arange(b)).sum(axis=1)
    v = values.astype(np.int64)
    d = (target - v) % q
    d = np.where(d > q // 2, d - q, d)
    out = v + d
    out = np.where(out < 0, out + q, np.where(out > 255, out - q, out))
    return out.astype(np.uint8)


def read_residue(values: np.ndarray, nbits: int, b: int) -> np.ndarray:
    """The first ``nbits`` bits written by :func:`embed_residue` (uint8)."""
    r = values.astype(np.int64) % (1 << b)
    return ((r[:, None] >> np.arange(b)) & 1).astype(np.uint8).reshape(-1)[:nbits]


def embed_spatial(cover: np.ndarray, rho: np.ndarray, key: bytes, nonce: bytes, enc_header: bytes,
                  sealed: bytes, channel: int, height: int = DEFAULT_HEIGHT) -> np.ndarray:
    """The stego image (H, W, C) uint8 carrying (nonce, header) and the sealed payload.

    Args:
        cover: (H, W, C) uint8. rho: (H, W, C) finite costs of a +-1 change.
        key: the user key; nonce, enc_header: see :mod:`steg.digital.cipher`.
        sealed: payload ciphertext + MAC. channel: 0 (+-1 STC) or 1..3 (bits a value).
    """
    flat = cover.reshape(-1).copy()
    cost = rho.reshape(-1)
    n = flat.size
    head_pos, rest = layout(key, n)
    head = np.tile(bits(nonce + enc_header), REPEAT)
    y = stc_embed(flat[head_pos] & 1, cost[head_pos], head, height)
    flat[head_pos] = plus_minus_one(flat[head_pos], y, key, "digital/head-sign/" + nonce.hex())
    pos = _payload_positions(key, nonce, rest)
    payload = bits(sealed)
    if len(payload) > payload_capacity(n, channel):
        raise DigitalError(f"payload of {len(payload)} bits does not fit the {payload_capacity(n, channel)} "
                           "bits of this cover")
    if channel == 0:
        y = stc_embed(flat[pos] & 1, cost[pos], payload, height)
        flat[pos] = plus_minus_one(flat[pos], y, image_key(key, nonce), "digital/sign")
    else:
        used = pos[: -(-len(payload) // channel)]
        flat[used] = embed_residue(flat[used], payload, channel)
    return flat.reshape(cover.shape)


def read_head(stego: np.ndarray, key: bytes, height: int = DEFAULT_HEIGHT) -> tuple[bytes, bytes]:
    """(nonce, encrypted header) read from a stego image (H, W, C) uint8 by majority of the copies."""
    flat = stego.reshape(-1)
    head_pos, _ = layout(key, flat.size)
    copies = stc_extract(flat[head_pos] & 1, REPEAT * HEAD_BITS, height).reshape(REPEAT, HEAD_BITS)
    head = unbits((copies.sum(axis=0) * 2 > REPEAT).astype(np.uint8))
    return head[:NONCE_BYTES], head[NONCE_BYTES:]


def read_payload(stego: np.ndarray, key: bytes, nonce: bytes, nbytes: int, channel: int,
                 height: int = DEFAULT_HEIGHT) -> bytes:
    """The ``nbytes`` sealed bytes (ciphertext + MAC) from a stego image (H, W, C) uint8."""
    flat = stego.reshape(-1)
    n = flat.size
    _, rest = layout(key, n)
    nbits = 8 * nbytes
    if nbits > payload_capacity(n, channel) or nbits <= 0:
        raise DigitalError(f"the header announces {nbytes} bytes, more than this {stego.shape[1]}x{stego.shape[0]} "
                           "image holds: the stego image was cut or resized")
    pos = _payload_positions(key, nonce, rest)
    if channel == 0:
        return unbits(stc_extract(flat[pos] & 1, nbits, height))
    return unbits(read_residue(flat[pos[: -(-nbits // channel)]], nbits, channel))
