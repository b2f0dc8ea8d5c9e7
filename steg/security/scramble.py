"""Keyed scrambling of the secret image: the default keyed mode of every learned architecture.

The transforms of :meth:`steg.nets.StegNet.hide_with_key` / ``reveal_with_key`` (the
keyed protocol: :mod:`steg.nets.base`); a method with a keyed mode of its own (qim)
overrides those and does not use this module.

A learned hide/reveal net is public (it ships in the model file), so on its own it
reveals the secret to whoever has it. Its keyed mode (``model.keyed=true``, any
:class:`steg.nets.StegNet`) therefore works outside the net, on whole images:

    hide(cover, secret, key)   = net.hide(cover, scramble(secret, key))
    reveal(stego, key)         = unscramble(net.reveal(stego), key)

:func:`scramble` cuts the secret into ``block`` x ``block`` squares (``model.key_block``,
default :data:`DEFAULT_BLOCK`), moves every square to a keyed pseudo-random place,
turns or mirrors it (one of the 8 symmetries of a square) and replaces about half
of them by their negative ``1 - s``, all by keyed choices. Pixels of a right or
bottom strip narrower than a block are permuted (and negated) one by one among
themselves. Every choice comes from ``hashlib.shake_256`` of the key, a label, the
image size and the block (:func:`steg.security.keys.key_stream`), never from Python's or
torch's seeded generators; the permutations are stable argsorts of 64-bit stream
words. ``block=1`` scrambles single pixels.

The net is trained on secrets scrambled under a fresh key per image
(:meth:`steg.nets.StegNet.forward`), so it learns to hide any such image, and the
loss is measured on the unscrambled image (what the user gets). The block is the
trade-off: inside a square the secret is still a piece of a photograph, which the
net can compress; a scrambled image of single pixels is white noise, which a
learned net barely learns to hide (docs/security.md has the measurements).

Without the key, ``net.reveal`` returns the scrambled secret: a heap of small
squares in an order, orientation and polarity that only the key gives. A wrong key
unscrambles into other noise: a wrong key gives an image, not an error.

**One key, many images** (:func:`scramble_secret` / :func:`unscramble_secret`,
what the default keyed mode uses with ``nonce=True``, as :class:`steg.inference.model.StegModel`
asks for a user's key): every hide draws a random 48-bit
nonce and scrambles with the key of (key, nonce) (:func:`steg.security.keys.image_key`), so
no two images share a scrambling (with a shared one, a single known secret would
give the permutation away, and every other image of that size with it). The nonce
travels inside the scrambled secret: each bit in a pair of slots of at least 16
pixels (whole blocks), at places chosen by the key alone, one slot white and one
black (which one: the bit, masked by a key-only bit), read back by comparing the
two slots' means. So it survives whatever the net's reveal survives. The pixels it
displaces (1536 for blocks up to 4) are filled in from their neighbours; images in
which they would be more than :data:`NONCE_MAX_SHARE` of the pixels carry no nonce.

Shapes: images (B, C, H, W) (any float dtype, any device; the key material is made
on the CPU). :func:`scramble` and :func:`unscramble` are differentiable in the image.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from steg.device import to_device
from steg.security.keys import Keys, image_key, key_stream, per_image

__all__ = [
    "Keys",
    "DEFAULT_BLOCK",
    "NONCE_BYTES",
    "NONCE_BITS",
    "NONCE_SLOT_PIXELS",
    "NONCE_MAX_SHARE",
    "scrambling",
    "scramble",
    "unscramble",
    "nonce_slots",
    "scramble_secret",
    "unscramble_secret",
]

#: Side of the scrambled squares unless the model says otherwise (``model.key_block``).
DEFAULT_BLOCK = 4
#: Random bytes drawn for every keyed hide (48 bits: no repeat among millions of images of one key, in practice).
NONCE_BYTES = 6
NONCE_BITS = 8 * NONCE_BYTES
#: Smallest number of pixels in one nonce slot (whole blocks; random single pixels for ``block=1``).
NONCE_SLOT_PIXELS = 16
#: Largest share of an image's pixels that the nonce may displace; smaller images carry no nonce.
NONCE_MAX_SHARE = 0.03


def _shape(shape: Sequence[int]) -> tuple[int, int, int]:
    c, h, w = (int(v) for v in shape[-3:])
    return c, h, w


def _words(key: bytes, label: str, n: int) -> np.ndarray:
    return np.frombuffer(key_stream(key, label, 8 * n), dtype="<u8")


def _bits(key: bytes, label: str, n: int) -> np.ndarray:
    raw = np.frombuffer(key_stream(key, label, (n + 7) // 8), dtype=np.uint8)
    return np.unpackbits(raw, bitorder="little")[:n].astype(bool)


@lru_cache(maxsize=16)
def _symmetries(block: int) -> np.ndarray:
    """(8, block*block): for each symmetry of a square, the source index of every position of a turned block."""
    base = np.arange(block * block).reshape(block, block)
    turned = [np.rot90(base, k) for k in range(4)]
    return np.stack([t.flatten() for t in turned] + [np.fliplr(t).flatten() for t in turned])


def _check_block(block: int) -> int:
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ValueError(f"key_block must be an integer >= 1 (the side of the scrambled squares), got {block!r}")
    return block


def scrambling(key: bytes, shape: Sequence[int], block: int = DEFAULT_BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """The keyed scrambling of an image of ``shape`` (..., C, H, W), as per-pixel tables.

    Returns ``(source, negate)``, both (H*W,): position ``j`` (raster order) of the
    scrambled image holds pixel ``source[j]`` of the secret (int64, a permutation),
    negated where ``negate[j]`` (bool).
    """
    c, h, w = _shape(shape)
    b = _check_block(block)
    tag = f"scramble/{c}x{h}x{w}/b{b}"
    hb, wb = h // b, w // b
    source = np.arange(h * w, dtype=np.int64)
    negate = np.zeros(h * w, dtype=bool)
    if hb * wb:
        n = hb * wb
        moved = np.argsort(_words(key, f"{tag}/blocks", n), kind="stable")
        turns = np.frombuffer(key_stream(key, f"{tag}/turns", n), dtype=np.uint8) % 8
        q = np.arange(n)
        inner = np.arange(b * b)
        dst = ((q // wb)[:, None] * b + inner // b) * w + (q % wb)[:, None] * b + inner % b
        m = _symmetries(b)[turns]  # (n, b*b) source index inside the source block
        src = ((moved // wb)[:, None] * b + m // b) * w + (moved % wb)[:, None] * b + m % b
        source[dst.ravel()] = src.ravel()
        negate[dst.ravel()] = np.repeat(_bits(key, f"{tag}/negate", n), b * b)
    ys, xs = np.divmod(np.arange(h * w), w)
    rest = np.flatnonzero((ys >= hb * b) | (xs >= wb * b))  # strips narrower than a block
    if len(rest):
        source[rest] = rest[np.argsort(_words(key, f"{tag}/rest", len(rest)), kind="stable")]
        negate[rest] = _bits(key, f"{tag}/rest-negate", len(rest))
    return torch.from_numpy(source), torch.from_numpy(negate)


def _tables(keys: Keys, x: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(source index (B, C, H*W), negate (B, 1, H*W)) of the scrambling of each image, on x's device."""
    b, c, h, w = x.shape
    tables = [scrambling(key, x.shape, block) for key in per_image(keys, b)]
    # made on the CPU (numpy, SHAKE-256); copied without a host round trip (steg.device.to_device)
    index = to_device(torch.stack([t[0] for t in tables]), x.device)[:, None, :].expand(b, c, h * w)
    return index, to_device(torch.stack([t[1] for t in tables]), x.device)[:, None, :]


def scramble(x: torch.Tensor, keys: Keys, block: int = DEFAULT_BLOCK) -> torch.Tensor:
    """Keyed moves, turns and negations of ``block`` x ``block`` squares: (B, C, H, W) -> (B, C, H, W).

    ``keys``: one key for the batch, or one per image. Exactly inverted by :func:`unscramble`.

    >>> x = torch.rand(2, 3, 10, 13)
    >>> torch.equal(unscramble(scramble(x, b"k"), b"k"), x)
    True
    """
    index, negate = _tables(keys, x, block)
    v = torch.gather(x.flatten(2), 2, index)
    return torch.where(negate, 1 - v, v).view_as(x)


def unscramble(x: torch.Tensor, keys: Keys, block: int = DEFAULT_BLOCK) -> torch.Tensor:
    """The inverse of :func:`scramble` with the same keys and block: (B, C, H, W) -> (B, C, H, W)."""
    index, negate = _tables(keys, x, block)
    v = x.flatten(2)
    v = torch.where(negate, 1 - v, v)
    return torch.empty_like(v).scatter(2, index, v).view_as(x)  # pixel j goes back to index[j]


# --------------------------------------------------------------------------- #
# Per-image nonce, carried inside the scrambled secret
# --------------------------------------------------------------------------- #


def nonce_slots(key: bytes, shape: Sequence[int],
                block: int = DEFAULT_BLOCK) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Where and how an image of ``shape`` (..., C, H, W) carries its nonce, from the key alone.

    Returns ``(slots, mask)``: ``slots`` (NONCE_BITS, 2, P) int64, distinct pixel
    positions of the scrambled image (P >= :data:`NONCE_SLOT_PIXELS`: whole
    aligned blocks), and ``mask`` (NONCE_BITS,) bool. Bit ``i`` makes slot
    ``[i, 0]`` white and ``[i, 1]`` black if ``bit ^ mask[i]``, else the reverse.
    None when the slots would displace more than :data:`NONCE_MAX_SHARE` of the pixels.
    """
    c, h, w = _shape(shape)
    b = _check_block(block)
    per_slot = -(-NONCE_SLOT_PIXELS // (b * b))  # blocks per slot
    hb, wb = h // b, w // b
    need = NONCE_BITS * 2 * per_slot
    if need * b * b > NONCE_MAX_SHARE * h * w or need * 4 > hb * wb:
        return None
    tag = f"scramble-nonce/{c}x{h}x{w}/b{b}"
    candidates = _words(key, f"{tag}/slots", 4 * need) % np.uint64(hb * wb)
    _, first = np.unique(candidates, return_index=True)  # distinct blocks, in stream order
    chosen = candidates[np.sort(first)][:need].astype(np.int64)
    if len(chosen) < need:  # 4x more candidates than needed among >= 4x more blocks: never in practice
        raise RuntimeError(f"not enough distinct nonce slots in a {h}x{w} image")
    inner = np.arange(b * b)
    pixels = ((chosen // wb)[:, None] * b + inner // b) * w + (chosen % wb)[:, None] * b + inner % b
    slots = torch.from_numpy(pixels.reshape(NONCE_BITS, 2, per_slot * b * b))
    return slots, torch.from_numpy(_bits(key, f"{tag}/mask", NONCE_BITS))


def scramble_secret(secret: torch.Tensor, key: bytes, block: int = DEFAULT_BLOCK,
                    nonce: bytes | None = None) -> torch.Tensor:
    """What a keyed learned net hides for one (1, C, H, W) secret: scrambled, carrying a nonce.

    ``nonce``: :data:`NONCE_BYTES` bytes (default: fresh random bytes from the OS;
    give one only for reproducible tests). Images too small for a nonce are
    scrambled with ``key`` itself.
    """
    slots = nonce_slots(key, secret.shape, block)
    if slots is None:
        return scramble(secret, key, block)
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce: expected {NONCE_BYTES} bytes, got {len(nonce)}")
    out = scramble(secret, image_key(key, nonce), block).clone()
    pixels, mask = slots
    bits = torch.tensor([(byte >> k) & 1 for byte in nonce for k in range(8)], dtype=torch.bool)
    white = (bits ^ mask).to(out.device, out.dtype)  # (bits,): the value of slot 0; slot 1 gets the other
    values = torch.stack([white, 1 - white], dim=1)[:, :, None].expand(pixels.shape)
    out.view(out.shape[0], out.shape[1], -1)[:, :, pixels.flatten().to(out.device)] = values.flatten()
    return out


def _read_nonce(revealed: torch.Tensor, slots: tuple[torch.Tensor, torch.Tensor]) -> bytes:
    pixels, mask = slots
    grey = revealed.reshape(revealed.shape[1], -1).mean(0)  # (H*W,) of one image
    means = grey[pixels.flatten().to(revealed.device)].view(pixels.shape).mean(-1).cpu()  # (bits, 2)
    bits = ((means[:, 0] > means[:, 1]) ^ mask).tolist()
    return bytes(sum(int(bits[8 * j + k]) << k for k in range(8)) for j in range(NONCE_BYTES))


def _fill_from_neighbours(x: torch.Tensor, lost: torch.Tensor, reach: int) -> torch.Tensor:
    """Replace the (H*W,) bool ``lost`` pixels of (1, C, H, W) ``x`` by the mean of the kept pixels within ``reach``."""
    h, w = x.shape[-2:]
    keep = (~lost).to(x.device, x.dtype).view(1, 1, h, w)
    out = x * keep
    for _ in range(2):  # a second pass fills any hole wider than the window
        pad = (reach, reach, reach, reach)
        total = F.avg_pool2d(F.pad(out * keep, pad), 2 * reach + 1, stride=1)
        weight = F.avg_pool2d(F.pad(keep, pad), 2 * reach + 1, stride=1)
        out = torch.where(keep.bool(), out, total / weight.clamp_min(1e-12))
        keep = torch.maximum(keep, (weight > 0).to(x.dtype))
    return out


def unscramble_secret(revealed: torch.Tensor, key: bytes, block: int = DEFAULT_BLOCK) -> torch.Tensor:
    """The secret from what the net revealed, (1, C, H, W): read the nonce, unscramble, fill its pixels.

    A wrong key reads other slots, hence another nonce and scrambling: noise, never an error.
    """
    slots = nonce_slots(key, revealed.shape, block)
    if slots is None:
        return unscramble(revealed, key, block)
    ikey = image_key(key, _read_nonce(revealed, slots))
    out = unscramble(revealed, ikey, block)
    lost = torch.zeros(revealed.shape[-2] * revealed.shape[-1], dtype=torch.bool)  # CPU: indexed by CPU tables
    lost[scrambling(ikey, revealed.shape, block)[0][slots[0].flatten()]] = True  # secret pixels the nonce displaced
    return _fill_from_neighbours(out, lost, reach=block)
