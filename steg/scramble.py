"""Keyed scrambling of the secret image: the keyed mode of every learned architecture.

A learned hide/reveal net is public (it ships in the model file), so on its own it
reveals the secret to whoever has it. Its keyed mode (``model.keyed=true``, any
:class:`steg.nets.StegNet`) therefore works outside the net, on whole images:

    hide(cover, secret, key)   = net.hide(cover, scramble(secret, key))
    reveal(stego, key)         = unscramble(net.reveal(stego), key)

:func:`scramble` moves every pixel to a keyed pseudo-random position (one
permutation of the H*W positions, the same for all channels) and replaces about
half of them, chosen by keyed bits, by their negative ``1 - s`` (all channels of
a pixel together). Both come from ``hashlib.shake_256`` of the key, a label and the
image size (:func:`steg.keys.key_stream`), never from Python's or torch's seeded
generators: the permutation is the stable argsort of 64-bit stream words. The net
is trained on secrets scrambled under a fresh key per image
(:meth:`steg.nets.StegNet.forward`), so it learns to hide any such image; the loss
is measured on the unscrambled image (what the user gets).

Without the key, ``net.reveal`` returns the scrambled secret: its pixels, each
perhaps negated, in an order that only the key gives. A wrong key unscrambles into
other noise: a wrong key gives an image, not an error. How secure, what it costs
and what it leaks (the colours of the secret, up to negation): ``docs/security.md``.

**One key, many images** (:func:`scramble_secret` / :func:`unscramble_secret`,
what :class:`steg.inference.StegModel` uses): every hide draws a random 64-bit
nonce and scrambles with the key of (key, nonce) (:func:`steg.keys.image_key`), so
no two images share a permutation. The nonce travels inside the scrambled secret:
each bit in :data:`NONCE_VOTES` pairs of pixels, at positions chosen by the key
alone, written as white/black or black/white (masked by key-only bits) and read
by comparing the pair, so it survives whatever the net's reveal survives (noise or
JPEG in training included). The 384 secret pixels it displaces are filled in from
their neighbours. Images under :data:`NONCE_MIN_PIXELS` pixels carry no nonce.

Shapes: images (B, C, H, W) (any float dtype, any device; the key material is made
on the CPU). :func:`scramble` and :func:`unscramble` are differentiable in the image.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

from steg.keys import image_key, key_stream

__all__ = [
    "Keys",
    "NONCE_BYTES",
    "NONCE_BITS",
    "NONCE_VOTES",
    "NONCE_MIN_PIXELS",
    "permutation",
    "flips",
    "scramble",
    "unscramble",
    "nonce_slots",
    "scramble_secret",
    "unscramble_secret",
]

#: A key (bytes, e.g. a :class:`~steg.keys.DerivedKey`) or one key per image of a batch.
Keys = Union[bytes, Sequence[bytes]]
#: Random bytes drawn for every keyed hide (64 bits: no collision among 2**32 images of one key, in practice).
NONCE_BYTES = 8
NONCE_BITS = 8 * NONCE_BYTES
#: Pixel pairs that carry each nonce bit (read by majority vote).
NONCE_VOTES = 3
#: Smallest image (pixels) that carries a nonce: it displaces 2 * 64 * 3 = 384 pixels (2.3% here, 0.6% at 256x256).
NONCE_MIN_PIXELS = 128 * 128


def _shape(shape: Sequence[int]) -> tuple[int, int, int]:
    c, h, w = (int(v) for v in shape[-3:])
    return c, h, w


def permutation(key: bytes, shape: Sequence[int]) -> torch.Tensor:
    """The keyed pixel permutation of an image of ``shape`` (..., C, H, W): (H*W,) int64.

    Position ``j`` of the scrambled image holds pixel ``perm[j]`` of the secret
    (raster order). The stable argsort of H*W little-endian 64-bit words of
    ``shake_256(key, "scramble-perm/CxHxW")``: uniform over all permutations up
    to the (negligible) chance of equal words.
    """
    c, h, w = _shape(shape)
    words = np.frombuffer(key_stream(key, f"scramble-perm/{c}x{h}x{w}", 8 * h * w), dtype="<u8")
    return torch.from_numpy(np.argsort(words, kind="stable"))


def flips(key: bytes, shape: Sequence[int]) -> torch.Tensor:
    """Keyed flip bits of an image of ``shape`` (..., C, H, W): (H*W,) bool, one per scrambled pixel.

    A flipped pixel is the negative ``1 - s`` in every channel (its colour's
    structure kept, so the net can still use the correlation between channels).
    """
    c, h, w = _shape(shape)
    raw = np.frombuffer(key_stream(key, f"scramble-flip/{c}x{h}x{w}", (h * w + 7) // 8), dtype=np.uint8)
    return torch.from_numpy(np.unpackbits(raw, bitorder="little")[: h * w].astype(bool))


def _batch_keys(keys: Keys, batch: int) -> list[bytes]:
    if isinstance(keys, (bytes, bytearray)):
        return [bytes(keys)] * batch
    keys = list(keys)
    if len(keys) != batch:
        raise ValueError(f"got {len(keys)} keys for a batch of {batch} images (expected one key, or one per image)")
    return keys


def _plan(keys: Keys, x: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(index (B, C, H*W) for gather, flip mask (B, 1, H*W)) on x's device."""
    b, c, h, w = x.shape
    idx, flip = [], []
    for key in _batch_keys(keys, b):
        perm = permutation(key, x.shape)
        if inverse:
            perm = torch.empty_like(perm).scatter_(0, perm, torch.arange(h * w))
        idx.append(perm)
        flip.append(flips(key, x.shape))
    index = torch.stack(idx).to(x.device)[:, None, :].expand(b, c, h * w)
    return index, torch.stack(flip)[:, None, :].to(x.device)


def scramble(x: torch.Tensor, keys: Keys) -> torch.Tensor:
    """Keyed permutation of the pixel positions, then keyed flips: (B, C, H, W) -> (B, C, H, W).

    ``keys``: one key for the batch, or one per image. Exactly inverted by :func:`unscramble`.

    >>> x = torch.rand(2, 3, 4, 5)
    >>> torch.equal(unscramble(scramble(x, b"k"), b"k"), x)
    True
    """
    index, flip = _plan(keys, x, inverse=False)
    v = torch.gather(x.flatten(2), 2, index)
    return torch.where(flip, 1 - v, v).view_as(x)


def unscramble(x: torch.Tensor, keys: Keys) -> torch.Tensor:
    """The inverse of :func:`scramble` with the same keys: (B, C, H, W) -> (B, C, H, W)."""
    index, flip = _plan(keys, x, inverse=True)
    v = x.flatten(2)
    v = torch.where(flip, 1 - v, v)
    return torch.gather(v, 2, index).view_as(x)


# --------------------------------------------------------------------------- #
# Per-image nonce, carried inside the scrambled secret
# --------------------------------------------------------------------------- #


def nonce_slots(key: bytes, shape: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Where and how an image of ``shape`` (..., C, H, W) carries its nonce, from the key alone.

    Returns ``(pairs, mask)``: ``pairs`` (NONCE_BITS, NONCE_VOTES, 2) int64, distinct
    pixel positions of the scrambled image, and ``mask`` (NONCE_BITS, NONCE_VOTES)
    bool. Bit ``b`` is written into each pair as white/black (``b ^ mask``) or
    black/white, and read back by comparing the two pixels (robust to a net that
    pulls values towards grey). None when the image has fewer than
    :data:`NONCE_MIN_PIXELS` pixels.
    """
    c, h, w = _shape(shape)
    if h * w < NONCE_MIN_PIXELS:
        return None
    need = NONCE_BITS * NONCE_VOTES * 2
    words = np.frombuffer(key_stream(key, f"scramble-nonce-slots/{c}x{h}x{w}", 8 * 2 * need), dtype="<u8")
    candidates = words % np.uint64(h * w)
    _, first = np.unique(candidates, return_index=True)  # distinct positions, in stream order
    chosen = candidates[np.sort(first)][:need]
    if len(chosen) < need:  # cannot happen above NONCE_MIN_PIXELS in practice; never silently short
        raise RuntimeError(f"not enough distinct nonce positions for a {h}x{w} image")
    pairs = torch.from_numpy(chosen.astype(np.int64)).view(NONCE_BITS, NONCE_VOTES, 2)
    raw = np.frombuffer(key_stream(key, f"scramble-nonce-mask/{c}x{h}x{w}", (need // 2 + 7) // 8), dtype=np.uint8)
    mask = torch.from_numpy(np.unpackbits(raw, bitorder="little")[: NONCE_BITS * NONCE_VOTES].astype(bool))
    return pairs, mask.view(NONCE_BITS, NONCE_VOTES)


def scramble_secret(secret: torch.Tensor, key: bytes, nonce: bytes | None = None) -> torch.Tensor:
    """What a keyed learned net hides for one (1, C, H, W) secret: scrambled, carrying a nonce.

    ``nonce``: :data:`NONCE_BYTES` bytes (default: fresh random bytes from the OS;
    give one only for reproducible tests). Images too small for a nonce are
    scrambled with ``key`` itself.
    """
    slots = nonce_slots(key, secret.shape)
    if slots is None:
        return scramble(secret, key)
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce: expected {NONCE_BYTES} bytes, got {len(nonce)}")
    out = scramble(secret, image_key(key, nonce)).clone()
    pairs, mask = slots
    bits = torch.tensor([(byte >> k) & 1 for byte in nonce for k in range(8)], dtype=torch.bool)
    first = (bits[:, None] ^ mask).to(out.dtype)  # (bits, votes): the first pixel of each pair
    values = torch.stack([first, 1 - first], dim=-1).flatten().to(out.device)
    out.view(out.shape[0], out.shape[1], -1)[:, :, pairs.flatten()] = values
    return out


def _read_nonce(revealed: torch.Tensor, slots: tuple[torch.Tensor, torch.Tensor]) -> bytes:
    pairs, mask = slots
    grey = revealed.reshape(revealed.shape[1], -1).mean(0)  # (H*W,) of one image
    read = grey[pairs.flatten().to(revealed.device)].view(pairs.shape).cpu()
    votes = (read[..., 0] > read[..., 1]) ^ mask  # (bits, votes)
    bits = (votes.float().mean(1) > 0.5).tolist()
    return bytes(sum(int(bits[8 * j + k]) << k for k in range(8)) for j in range(NONCE_BYTES))


def _fill_from_neighbours(x: torch.Tensor, lost: torch.Tensor) -> torch.Tensor:
    """Replace the (H*W,) bool ``lost`` pixels of (1, C, H, W) ``x`` by the mean of their kept 3x3 neighbours."""
    h, w = x.shape[-2:]
    keep = (~lost).to(x.dtype).view(1, 1, h, w).to(x.device)
    total = F.avg_pool2d(F.pad(x * keep, (1, 1, 1, 1)), 3, stride=1)
    weight = F.avg_pool2d(F.pad(keep, (1, 1, 1, 1)), 3, stride=1)
    filled = total / weight.clamp_min(1e-6)
    return torch.where(keep.bool(), x, filled)


def unscramble_secret(revealed: torch.Tensor, key: bytes) -> torch.Tensor:
    """The secret from what the net revealed, (1, C, H, W): read the nonce, unscramble, fill its pixels.

    A wrong key reads other slots, hence another nonce and permutation: noise, never an error.
    """
    slots = nonce_slots(key, revealed.shape)
    if slots is None:
        return unscramble(revealed, key)
    ikey = image_key(key, _read_nonce(revealed, slots))
    out = unscramble(revealed, ikey)
    h, w = revealed.shape[-2:]
    lost = torch.zeros(h * w, dtype=torch.bool)
    lost[permutation(ikey, revealed.shape)[slots[0].flatten()]] = True  # secret pixels the nonce displaced
    return _fill_from_neighbours(out, lost)
