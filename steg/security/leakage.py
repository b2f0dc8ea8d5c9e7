"""Attacks on hidden secrets: keyless read-outs, key reuse, and a learned thief.

Each attack gets what an outsider could have and returns images that should
look like the secret if the attack works; :mod:`steg.security.analysis` scores them with
PSNR against the real secret.

- :func:`keyless_attacks` (no model): the stego pixels' residue modulo every
  period 2..32 (``(stego mod Q) / (Q - 1)``, the one-liner that reads unkeyed
  qim), every channel's bit planes, and, given the cover, the stego-minus-cover
  residual amplified x10 and x20 (signed around mid-grey, and absolute).
- :func:`steg.nets.qim.known_secret_dither`: key reuse. Someone who knows one secret hidden
  with a key (and has its stego image) estimates the keyed qim dither at every
  pixel, and reads every other image of the same size hidden with that key.
- :class:`Thief` / :func:`train_thief`: a reveal net trained on (stego, secret)
  pairs that the attacker makes with the public model and keys of their own,
  then applied to stego images made with the user's key.

Images are (B, C, H, W) floats in [0, 1]; stego images are 8-bit.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from steg.nets import UnshuffleBody

__all__ = ["PERIODS", "AMPLIFY", "keyless_attacks", "Thief", "train_thief"]

#: Periods tried by the residue read-out.
PERIODS = range(2, 33)
#: Gains of the amplified stego-minus-cover residual.
AMPLIFY = (10, 20)


def keyless_attacks(stego: torch.Tensor, cover: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Read-outs that need no model and no key: name -> (B, C, H, W) image in [0, 1].

    Names: ``residue/Q`` for Q in :data:`PERIODS`; ``bitplane/c<channel>/b<bit>``
    (the plane replicated over the channels; bit 0 = LSB); with ``cover``:
    ``residual/xG`` (0.5 + G * (stego - cover)) and ``abs_residual/xG``.
    """
    levels = torch.round(stego.clamp(0, 1) * 255)
    out: dict[str, torch.Tensor] = {}
    for q in PERIODS:
        out[f"residue/{q}"] = torch.remainder(levels, q) / (q - 1)
    ints = levels.long()
    for c in range(stego.shape[1]):
        for b in range(8):
            plane = ((ints[:, c : c + 1] >> b) & 1).float()
            out[f"bitplane/c{c}/b{b}"] = plane.expand_as(stego)
    if cover is not None:
        diff = stego - cover
        for g in AMPLIFY:
            out[f"residual/x{g}"] = (0.5 + g * diff).clamp(0, 1)
            out[f"abs_residual/x{g}"] = (g * diff.abs()).clamp(0, 1)
    return out


class Thief(nn.Module):
    """An attacker's reveal net: what the attacker sees of a stego image -> secret.

    ``view`` (the method's :meth:`steg.nets.StegNet.attacker_view`; default: the
    image itself) turns the stego image into the attacker's input, e.g. the stego
    image plus its qim residue phase for the model's public period (what the qim
    decoder itself sees), then an :class:`UnshuffleBody`. Shapes: (B, C, H, W) ->
    (B, C, H, W), H, W multiples of 4.
    """

    def __init__(self, channels: int = 3, view: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 width: int = 32, depth: int = 2):
        super().__init__()
        self.view = view
        in_ch = channels if view is None else int(view(torch.zeros(1, channels, 4, 4)).shape[1])
        self.body = UnshuffleBody(in_ch, channels, width, depth)

    def forward(self, stego: torch.Tensor) -> torch.Tensor:
        x = stego if self.view is None else self.view(stego)
        return torch.sigmoid(self.body(x))


def train_thief(
    make_batch: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    channels: int,
    view: Callable[[torch.Tensor], torch.Tensor] | None,
    steps: int,
    lr: float = 2e-3,
) -> Thief:
    """Train a :class:`Thief` for ``steps`` Adam steps on MSE.

    ``make_batch()`` returns (stegos, secrets), (B, C, h, w) each, the stego
    images quantized to 8 bits and made with keys the attacker chose; ``view``:
    see :class:`Thief`. The thief is trained (and returned) on the device and in
    the dtype of those batches.
    """
    thief, opt = Thief(channels, view), None
    thief.train()
    for _ in range(steps):
        stegos, secrets = make_batch()
        if opt is None:  # the thief lives where the attacker's batches are (device and dtype)
            thief.to(stegos.device, stegos.dtype)
            opt = torch.optim.Adam(thief.parameters(), lr=lr)
        loss = nn.functional.mse_loss(thief(stegos), secrets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return thief.eval()
