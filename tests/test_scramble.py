"""Keyed scrambling (steg.scramble): exact inverse, a keyed permutation with negations, independent of
torch's RNG, and the per-image nonce carried inside the scrambled secret."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from steg import scramble as S
from steg.data import sample_photo_paths
from steg.io import load_image, square_image, to_tensor
from steg.keys import derive_key, random_key


@pytest.fixture(scope="module")
def photo():
    """A held-out photo, (1, 3, 160, 128)."""
    return to_tensor(square_image(load_image(sample_photo_paths("val")[0], 3), 160)).unsqueeze(0)[..., :128]


def test_unscramble_inverts_scramble_exactly():
    x = torch.rand(3, 3, 17, 23)
    for keys in (b"one key", [random_key() for _ in range(3)]):
        scrambled = S.scramble(x, keys)
        assert scrambled.shape == x.shape and not torch.equal(scrambled, x)
        assert torch.equal(S.unscramble(scrambled, keys), x)
    assert not torch.equal(S.unscramble(S.scramble(x, b"k1"), b"k2"), x)
    with pytest.raises(ValueError, match="2 keys for a batch of 3"):
        S.scramble(x, [b"a", b"b"])


def test_scramble_moves_whole_pixels_and_negates_about_half():
    key = derive_key("pw")
    x = torch.rand(1, 3, 24, 20)
    perm, flip = S.permutation(key, x.shape), S.flips(key, x.shape)
    assert torch.equal(perm.sort().values, torch.arange(24 * 20))  # a permutation of the positions
    assert (perm != torch.arange(24 * 20)).float().mean() > 0.9
    assert 0.4 < flip.float().mean() < 0.6
    expected = x.flatten(2)[:, :, perm]
    expected = torch.where(flip, 1 - expected, expected).view_as(x)
    assert torch.equal(S.scramble(x, key), expected)
    # another key, or the same key on another image size, gives another permutation
    assert not torch.equal(S.permutation(derive_key("pw2"), x.shape), perm)
    assert not torch.equal(S.permutation(key, (3, 20, 24)), perm)


def test_key_material_does_not_depend_on_torch_or_python_rngs():
    key, shape = derive_key("pw"), (3, 128, 128)
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    before = S.permutation(key, shape), S.flips(key, shape), S.nonce_slots(key, shape)
    torch.manual_seed(1234), random.seed(99), np.random.seed(7)
    torch.rand(10), random.random(), np.random.rand()
    after = S.permutation(key, shape), S.flips(key, shape), S.nonce_slots(key, shape)
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
    assert all(torch.equal(a, b) for a, b in zip(before[2], after[2]))


def test_scramble_gradcheck():
    x = torch.rand(2, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: S.scramble(t, [b"a", b"b"]), (x,))
    assert torch.autograd.gradcheck(lambda t: S.unscramble(t, b"a"), (x,))


def test_nonce_gives_every_image_its_own_scrambling(photo):
    key = derive_key("pw")
    slots = S.nonce_slots(key, photo.shape)
    assert slots is not None and slots[0].unique().numel() == S.NONCE_BITS * S.NONCE_VOTES * 2
    assert S.nonce_slots(key, (3, 64, 64)) is None  # too small: scrambled with the key itself
    a = S.scramble_secret(photo, key, nonce=b"a" * S.NONCE_BYTES)
    b = S.scramble_secret(photo, key, nonce=b"b" * S.NONCE_BYTES)
    kept = torch.ones(photo.shape[-2] * photo.shape[-1], dtype=torch.bool)
    kept[slots[0].flatten()] = False
    # same key, same secret, another nonce: another permutation almost everywhere
    same = (a.flatten(2) == b.flatten(2)).all(1)[0][kept]
    assert same.float().mean() < 0.1
    # the nonce comes back and the secret with it; only the displaced pixels are estimates
    back = S.unscramble_secret(a, key)
    wrong_pixels = (back - photo).abs().amax(1).flatten() > 1e-6
    assert int(wrong_pixels.sum()) <= S.NONCE_BITS * S.NONCE_VOTES * 2
    assert float((back - photo).abs().mean()) < 2e-3
    # a wrong key reads another nonce: noise, not an error
    assert float((S.unscramble_secret(a, derive_key("other")) - photo).abs().mean()) > 0.1


def test_nonce_survives_a_blurry_noisy_reveal(photo):
    """The nonce pairs are read by comparison: a net that pulls values towards grey and adds noise still reads it."""
    key = derive_key("pw")
    scrambled = S.scramble_secret(photo, key, nonce=bytes(range(S.NONCE_BYTES)))
    gen = torch.Generator().manual_seed(0)
    poor = 0.5 + 0.3 * (scrambled - 0.5) + 0.05 * torch.randn(scrambled.shape, generator=gen)
    back = S.unscramble_secret(poor, key)
    exact = S.unscramble(poor, S.image_key(key, bytes(range(S.NONCE_BYTES))))
    kept = (back - exact).abs().amax(1).flatten() < 1e-6
    assert kept.float().mean() > 0.97  # the right permutation: all but the displaced pixels agree
