"""Detecting stego images: a small steganalysis CNN and a classical statistic.

- :class:`SRMFilters`: a fixed (not learned) residual front end in the spirit of
  the spatial rich model: high-pass kernels that cancel most of the image
  content and keep the noise where embedding changes live, applied per channel
  and truncated to +-``threshold`` levels (Yedroudj-Net's TLU).
- :class:`Steganalyser`: that front end, then a few conv layers in the spirit of
  Xu-Net / Yedroudj-Net (absolute value after the first layer, batch norm, TanH
  then ReLU, average pooling), global average pooling and one logit
  ("stego" > 0).
- :func:`train_steganalyser`: trained cover-vs-stego on paired random crops
  (a cover and its stego image in the same batch, as is usual in
  steganalysis) that the caller makes from training photos.
- :func:`pov_chi_square`: the pairs-of-values chi-square test of Westfeld and
  Pfitzmann (no learning): LSB replacement equalises the counts of 2k and
  2k+1; the score is the probability that they were equalised.

Images are (B, C, H, W) floats in [0, 1] (8-bit values); scores are (B,).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["SRM_KERNELS", "SRMFilters", "Steganalyser", "train_steganalyser", "detection_scores", "pov_chi_square"]


def _kernels() -> dict[str, torch.Tensor]:
    def at_centre(k: list[list[float]]) -> torch.Tensor:
        t = torch.tensor(k, dtype=torch.float32)
        out = torch.zeros(5, 5)
        h, w = t.shape
        out[(5 - h) // 2 : (5 - h) // 2 + h, (5 - w) // 2 : (5 - w) // 2 + w] = t
        return out

    kv = [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]]
    return {
        "kv": at_centre(kv) / 12.0,  # Ker-Bohme: 4th-order, the classic SRM "KV" residual
        "square3": at_centre([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]]) / 4.0,
        "first_h": at_centre([[0, 0, 0], [0, -1, 1], [0, 0, 0]]),
        "first_v": at_centre([[0, 0, 0], [0, -1, 0], [0, 1, 0]]),
        "second_h": at_centre([[1, -2, 1]]) / 2.0,
        "second_v": at_centre([[1], [-2], [1]]) / 2.0,
        "third_h": at_centre([[1, -3, 3, -1, 0]]) / 3.0,
        "third_v": at_centre([[1], [-3], [3], [-1], [0]]) / 3.0,
    }


#: The fixed high-pass kernels (5x5, zero-padded at the centre; every one sums to 0).
SRM_KERNELS: dict[str, torch.Tensor] = _kernels()


class SRMFilters(nn.Module):
    """Fixed high-pass residuals per channel, truncated: (B, C, H, W) in [0, 1] -> (B, C*K, H, W) in levels.

    K = len(SRM_KERNELS). The kernels are a buffer, never trained.
    """

    def __init__(self, channels: int = 3, threshold: float = 3.0):
        super().__init__()
        bank = torch.stack(list(SRM_KERNELS.values()))[:, None]  # (K, 1, 5, 5)
        self.register_buffer("weight", bank.repeat(channels, 1, 1, 1))  # grouped: K per channel
        self.channels = channels
        self.threshold = float(threshold)
        self.out_channels = channels * len(SRM_KERNELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = nn.functional.conv2d(x * 255.0, self.weight, padding=2, groups=self.channels)
        return r.clamp(-self.threshold, self.threshold)


class Steganalyser(nn.Module):
    """Cover-vs-stego classifier: (B, C, H, W) in [0, 1] -> (B,) logits (> 0: stego)."""

    def __init__(self, channels: int = 3, width: int = 16):
        super().__init__()
        self.srm = SRMFilters(channels)

        def block(c_in: int, c_out: int, k: int, act: nn.Module, pool: bool = True) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out), act]
            if pool:
                layers.append(nn.AvgPool2d(3, stride=2, padding=1))
            return layers

        self.first = nn.Conv2d(self.srm.out_channels, width, 5, padding=2, bias=False)
        self.body = nn.Sequential(
            nn.BatchNorm2d(width), nn.Tanh(), nn.AvgPool2d(3, stride=2, padding=1),
            *block(width, width, 5, nn.Tanh()),
            *block(width, 2 * width, 3, nn.ReLU(inplace=True)),
            *block(2 * width, 4 * width, 3, nn.ReLU(inplace=True), pool=False),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(torch.abs(self.first(self.srm(x)))).squeeze(1)  # Xu-Net: |.| after the first conv


def train_steganalyser(
    make_batch: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    channels: int,
    steps: int,
    lr: float = 1e-3,
) -> Steganalyser:
    """Train a :class:`Steganalyser` for ``steps`` Adam steps.

    ``make_batch()`` returns (covers, stegos), two (B, C, h, w) tensors of paired
    crops (stego i made from cover i), quantized to 8 bits. The detector is
    trained (and returned) on the device and in the dtype of those batches.
    """
    net, opt = Steganalyser(channels), None
    loss_fn = nn.BCEWithLogitsLoss()
    net.train()
    for _ in range(steps):
        covers, stegos = make_batch()
        if opt is None:  # the detector lives where the batches are (device and dtype)
            net.to(covers.device, covers.dtype)
            opt = torch.optim.Adam(net.parameters(), lr=lr)
        x = torch.cat([covers, stegos])
        logits = net(x)
        y = torch.cat([torch.zeros(len(covers)), torch.ones(len(stegos))]).to(logits.device, logits.dtype)
        loss = loss_fn(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def detection_scores(net: Steganalyser, images: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """Probability of "stego" for (N, C, h, w) images (any device): (N,) float32 on the CPU.

    Each batch of images goes to the detector's device and dtype.
    """
    from steg.device import placement

    device, dtype = placement(net)
    net.eval()
    return torch.cat([torch.sigmoid(net(images[i : i + batch].to(device, dtype))).float().cpu()
                      for i in range(0, len(images), batch)])


def pov_chi_square(images: torch.Tensor, min_expected: float = 4.0) -> torch.Tensor:
    """Pairs-of-values chi-square test: (N, C, h, w) 8-bit images in [0, 1] -> (N,) in [0, 1].

    For each image, the histogram of all its 8-bit values; for each pair
    (2k, 2k+1) with an expected count ``(n_2k + n_2k+1) / 2`` of at least
    ``min_expected``, the chi-square term ``(n_2k - expected)^2 / expected``.
    The score is the chi-square survival function at that sum with (pairs - 1)
    degrees of freedom: near 1 when the pairs are as equal as LSB replacement
    makes them (stego), near 0 for a natural image.
    """
    from scipy.stats import chi2

    levels = torch.round(images.detach().clamp(0, 1) * 255).long().flatten(1).cpu()
    n = levels.shape[0]
    offsets = torch.arange(n)[:, None] * 256  # one histogram per image in one bincount
    hist = torch.bincount((levels + offsets).flatten(), minlength=256 * n).view(n, 256).double()
    even, odd = hist[:, 0::2], hist[:, 1::2]
    expected = (even + odd) / 2
    used = expected >= min_expected
    terms = torch.where(used, (even - expected) ** 2 / expected.clamp_min(1e-9), torch.zeros_like(expected))
    dof = (used.sum(1) - 1).clamp_min(1)
    return torch.from_numpy(chi2.sf(terms.sum(1).numpy(), dof.numpy())).float()
