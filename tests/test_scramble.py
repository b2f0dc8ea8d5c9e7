"""Keyed scrambling (steg.security.scramble): exact inverse, keyed moves/turns/negations of squares, independent of
torch's RNG, and the per-image nonce carried inside the scrambled secret."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from steg.security import scramble as S
from steg.data import sample_photo_paths
from steg.io import load_image, square_image, to_tensor
from steg.security.keys import derive_key, image_key, random_key


@pytest.fixture(scope="module")
def photo():
    """A held-out photo, (1, 3, 256, 256): large enough to carry a nonce."""
    return to_tensor(square_image(load_image(sample_photo_paths("val")[0], 3), 256)).unsqueeze(0)


@pytest.mark.parametrize("block", [1, 2, 4, 8])
def test_unscramble_inverts_scramble_exactly(block):
    x = torch.rand(3, 3, 17, 23)  # not a multiple of the block: strips left over at the right and bottom
    for keys in (b"one key", [random_key() for _ in range(3)]):
        scrambled = S.scramble(x, keys, block)
        assert scrambled.shape == x.shape and not torch.equal(scrambled, x)
        assert torch.equal(S.unscramble(scrambled, keys, block), x)
    assert not torch.equal(S.unscramble(S.scramble(x, b"k1", block), b"k2", block), x)
    with pytest.raises(ValueError, match="2 keys for a batch of 3"):
        S.scramble(x, [b"a", b"b"], block)
    with pytest.raises(ValueError, match="key_block must be an integer >= 1"):
        S.scramble(x, b"k", 0)


def test_scramble_moves_turns_and_negates_whole_squares():
    key, b = derive_key("pw"), 4
    x = torch.rand(1, 3, 24, 20)
    source, negate = S.scrambling(key, x.shape, b)
    assert torch.equal(source.sort().values, torch.arange(24 * 20))  # a permutation of the pixels
    out = S.scramble(x, key, b)
    blocks = lambda t: t[0].unfold(1, b, b).unfold(2, b, b).reshape(3, -1, b, b).transpose(0, 1)  # noqa: E731
    src = [blk for blk in blocks(x)]
    turned = 0
    for blk in blocks(out):  # every scrambled square is a source square, turned/mirrored, maybe negated
        candidates = [t for s in src for t in (s, 1 - s)]
        variants = [torch.rot90(c, k, (1, 2)) for c in candidates for k in range(4)]
        variants += [v.flip(2) for v in variants]
        match = [i for i, v in enumerate(variants) if torch.equal(v, blk)]
        assert match
        turned += all(i % 4 != 0 or i >= 4 * len(candidates) for i in match)
    assert turned > 5  # most squares are turned or mirrored (7 in 8 at random)
    squares = negate.view(24, 20).unfold(0, b, b).unfold(1, b, b).reshape(-1, b * b)
    assert (squares.all(1) | ~squares.any(1)).all() and 0.2 < squares[:, 0].float().mean() < 0.8
    # another key, or the same key on another image size or block, scrambles otherwise
    assert not torch.equal(S.scrambling(derive_key("pw2"), x.shape, b)[0], source)
    assert not torch.equal(S.scrambling(key, (3, 20, 24), b)[0], source)
    assert not torch.equal(S.scrambling(key, x.shape, 2)[0], source)


def test_key_material_does_not_depend_on_torch_or_python_rngs():
    key, shape = derive_key("pw"), (3, 256, 256)
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    before = S.scrambling(key, shape), S.nonce_slots(key, shape)
    torch.manual_seed(1234), random.seed(99), np.random.seed(7)
    torch.rand(10), random.random(), np.random.rand()
    after = S.scrambling(key, shape), S.nonce_slots(key, shape)
    assert all(torch.equal(a, b) for a, b in zip(before[0] + before[1], after[0] + after[1]))


def test_scramble_gradcheck():
    x = torch.rand(2, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: S.scramble(t, [b"a", b"b"], 2), (x,))
    assert torch.autograd.gradcheck(lambda t: S.unscramble(t, b"a", 2), (x,))


@pytest.mark.parametrize("block", [1, 4])
def test_nonce_gives_every_image_its_own_scrambling(photo, block):
    key = derive_key("pw")
    slots, mask = S.nonce_slots(key, photo.shape, block)
    assert slots.shape[:2] == (S.NONCE_BITS, 2) and slots.unique().numel() == slots.numel() >= 2 * 16 * S.NONCE_BITS
    assert S.nonce_slots(key, (3, 128, 128), block=4) is None  # too small: scrambled with the key itself
    a = S.scramble_secret(photo, key, block, nonce=b"a" * S.NONCE_BYTES)
    b = S.scramble_secret(photo, key, block, nonce=b"b" * S.NONCE_BYTES)
    kept = torch.ones(photo.shape[-2] * photo.shape[-1], dtype=torch.bool)
    kept[slots.flatten()] = False
    # same key, same secret, another nonce: another scrambling almost everywhere
    assert (a.flatten(2) == b.flatten(2)).all(1)[0][kept].float().mean() < 0.1
    # the nonce comes back and the secret with it; only the displaced pixels are estimates
    back = S.unscramble_secret(a, key, block)
    wrong_pixels = (back - photo).abs().amax(1).flatten() > 1e-6
    assert int(wrong_pixels.sum()) <= slots.numel() <= S.NONCE_MAX_SHARE * photo.shape[-1] * photo.shape[-2]
    assert float((back - photo).abs().mean()) < 2e-3
    # a wrong key reads another nonce: noise, not an error
    assert float((S.unscramble_secret(a, derive_key("other"), block) - photo).abs().mean()) > 0.1


def test_nonce_survives_a_blurry_noisy_reveal(photo):
    """The nonce slots are read by comparing their means: a reveal that pulls values towards a dark grey and
    adds noise still reads it."""
    key, nonce = derive_key("pw"), bytes(range(S.NONCE_BYTES))
    scrambled = S.scramble_secret(photo, key, nonce=nonce)
    gen = torch.Generator().manual_seed(0)
    poor = 0.35 + 0.3 * (scrambled - 0.5) + 0.1 * torch.randn(scrambled.shape, generator=gen)
    back = S.unscramble_secret(poor, key)
    exact = S.unscramble(poor, image_key(key, nonce))
    kept = (back - exact).abs().amax(1).flatten() < 1e-6
    assert kept.float().mean() > 0.96  # the right scrambling: all but the displaced pixels agree
