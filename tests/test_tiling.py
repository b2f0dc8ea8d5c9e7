"""steg.inference.tiling: spans cover the image on aligned starts; tiled runs equal the untiled run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from steg.inference.tiling import pad_bottom_right, round_up, run_tiled, spans


@pytest.mark.parametrize("length,tile,multiple", [(100, 32, 8), (64, 64, 4), (7, 4, 1), (130, 48, 16)])
def test_spans_cover_the_range_once_on_aligned_starts(length, tile, multiple):
    parts = spans(length, tile, multiple)
    assert parts[0][0] == 0 and parts[-1][1] == length
    assert all(a1 == b0 for (_, a1), (b0, _) in zip(parts, parts[1:]))  # contiguous, no overlap
    assert all(start % multiple == 0 for start, _ in parts)
    assert all(end - start <= round_up(tile, multiple) for start, end in parts)


def test_pad_bottom_right_reflects_and_falls_back_to_replicate_for_tiny_images():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    padded = pad_bottom_right(x, 2, 1)
    assert padded.shape == (1, 1, 6, 5)
    assert torch.equal(padded[..., :4, :4], x)
    assert torch.equal(padded[0, 0, 4, :4], x[0, 0, 2])  # reflect: row 4 mirrors row 2
    tiny = pad_bottom_right(torch.ones(1, 1, 1, 1), 3, 3)  # reflect impossible: replicate
    assert torch.equal(tiny, torch.ones(1, 1, 4, 4))


def blur(parts, window):
    """A 7x7 mean filter (receptive radius 3) of the sum of the inputs, zero-padded at the window's edge."""
    x = sum(parts)
    return F.avg_pool2d(F.pad(x, (3, 3, 3, 3), mode="replicate"), 7, stride=1)


@pytest.mark.parametrize("size", [(50, 70), (64, 64), (33, 97)])
def test_tiled_equals_untiled_when_the_margin_covers_the_receptive_radius(size):
    torch.manual_seed(0)
    a, b = torch.rand(1, 3, *size), torch.rand(1, 3, *size)
    whole = run_tiled(blur, [a, b], multiple=4, tile=None, margin=0)
    windows = []

    def counted(parts, window):
        windows.append(window)
        return blur(parts, window)

    tiled = run_tiled(counted, [a, b], multiple=4, tile=16, margin=8)
    assert len(windows) > 4  # it really cut the image
    assert whole.shape == tiled.shape == (1, 3, *size)
    torch.testing.assert_close(tiled, whole, atol=1e-6, rtol=0)


def test_a_margin_narrower_than_the_receptive_radius_shows_seams():
    torch.manual_seed(0)
    x = torch.rand(1, 1, 64, 64)
    whole = run_tiled(blur, [x], multiple=4, tile=None, margin=0)
    seamed = run_tiled(blur, [x], multiple=4, tile=16, margin=0)
    assert (seamed - whole).abs().max() > 1e-3
