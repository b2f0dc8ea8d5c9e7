"""Hide and reveal networks.

Every architecture is a :class:`StegNet`: a prep net that turns the secret into
features, a hide net that takes the cover concatenated with those features and
returns the stego image, a reveal net that recovers the secret from the stego
image, and a noise layer that sits between hide and reveal during training only.

All images are float tensors in [0, 1], shape (B, C, H, W) with C = ``channels``
(3 for RGB, 1 for the grayscale mode). H and W must be multiples of
``net.size_multiple`` (1 for the single-scale nets, 2**(levels-1) for
:class:`Subpixel`); :mod:`steg.inference` pads arbitrary sizes for you.

Architectures (``conf/model/*.yaml`` maps one-to-one onto these constructors):

- :class:`Baluja`: Baluja 2017, "Hiding Images in Plain Sight", as in
  harveyslash/Deep-Steganography: three parallel branches (3x3, 4x4, 5x5) of
  four conv layers, 50 filters each, concatenated to 150 channels, a mixing layer
  of the same three kernels, and a linear 1x1 output.
- :class:`Subpixel`: the subpixel-convolution autoencoder of the DIV2K seed:
  blocks of parallel 3x3/4x4/5x5 branches, stride-2 downsampling, PixelShuffle
  upsampling, and feature maps concatenated across levels (U-Net skips).
- :class:`CNN`: the compact Keras-lineage net: every layer is 50 3x3 + 10 4x4 +
  5 5x5 filters (65 channels); 2 prep layers, 5 hide layers, 5 reveal layers.
- :class:`UnshuffleUNet`: this project's fast design: a residual hide net
  (stego = cover + learned residual, starting at stego = cover) and a reveal
  net, each a small U-Net that works at 1/2 and 1/4 resolution after
  ``PixelUnshuffle``, so that a CPU spends its FLOPs on channels, not pixels.
- :class:`QIMNet` (the default): learned quantization-index modulation. The
  secret is written into the stego pixels' values modulo a period (dirty-paper
  coding: the hide step knows the cover, so the cover does not mask the code)
  and a U-Net decoder learns to clean the revealed secret; see its docstring.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = [
    "ARCHITECTURES",
    "Baluja",
    "Branches",
    "CNN",
    "GaussianNoise",
    "SameConv",
    "StegNet",
    "Subpixel",
    "UnshuffleUNet",
    "QIMNet",
    "build_net",
    "wrap_period",
]


class SameConv(nn.Sequential):
    """Stride-1 convolution whose output has the input's size, for any kernel.

    Even kernels are padded the way TensorFlow's ``padding='same'`` does it (the
    extra row and column go to the bottom and right), so a 4x4 kernel needs no
    cropping and matches the seeds. Shapes: (B, in_ch, H, W) -> (B, out_ch, H, W).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, relu: bool = True):
        total = kernel - 1
        before, after = total // 2, total - total // 2
        layers: list[nn.Module] = [
            nn.ZeroPad2d((before, after, before, after)),
            nn.Conv2d(in_ch, out_ch, kernel),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Branches(nn.Module):
    """Parallel branches of same-padded convs with different kernels, concatenated.

    Branch ``k`` is ``depth`` conv+ReLU layers of kernel ``kernels[k]`` and
    ``widths[k]`` filters. Shapes: (B, in_ch, H, W) -> (B, sum(widths), H, W).
    """

    def __init__(
        self,
        in_ch: int,
        widths: Sequence[int] | int,
        depth: int = 1,
        kernels: Sequence[int] = (3, 4, 5),
    ):
        super().__init__()
        if isinstance(widths, int):
            widths = [widths] * len(kernels)
        if len(widths) != len(kernels):
            raise ValueError(f"widths {list(widths)} must give one width per kernel {list(kernels)}")
        self.branches = nn.ModuleList()
        for width, kernel in zip(widths, kernels):
            layers = [SameConv(in_ch if i == 0 else width, width, kernel) for i in range(depth)]
            self.branches.append(nn.Sequential(*layers))
        self.out_channels = int(sum(widths))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Every branch reads the same input x (one of the seeds fed branch 2 the
        # output of branch 1 by mistake).
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class GaussianNoise(nn.Module):
    """Adds N(0, std^2) noise in training mode; the identity in eval mode."""

    def __init__(self, std: float = 0.0):
        super().__init__()
        if std < 0:
            raise ValueError(f"noise_std must be >= 0, got {std}")
        self.std = float(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.std > 0:
            return x + torch.randn_like(x) * self.std
        return x

    def extra_repr(self) -> str:
        return f"std={self.std}"


class StegNet(nn.Module):
    """A prep net, a hide net, a reveal net and the noise layer between them.

    ``hide(cover, secret)``: (B, C, H, W) x2 -> stego (B, C, H, W), unclamped.
    ``reveal(stego)``: (B, C, H, W) -> revealed secret (B, C, H, W), unclamped.
    ``forward`` runs both with noise (training only) in between and returns a
    dict with ``stego`` and ``revealed``.

    ``arch_config`` records the constructor arguments so that a trained model
    can be rebuilt without Hydra (see :func:`build_net`).
    """

    name = "stegnet"
    size_multiple = 1

    def __init__(
        self,
        prep_net: nn.Module,
        hide_net: nn.Module,
        reveal_net: nn.Module,
        noise_std: float = 0.0,
        residual: bool = False,
    ):
        super().__init__()
        self.prep_net = prep_net
        self.hide_net = hide_net
        self.reveal_net = reveal_net
        self.noise = GaussianNoise(noise_std)
        self.residual = residual
        self.arch_config: dict = {}

    def hide(self, cover: torch.Tensor, secret: torch.Tensor) -> torch.Tensor:
        out = self.hide_net(torch.cat([cover, self.prep_net(secret)], dim=1))
        return cover + out if self.residual else out

    def reveal(self, stego: torch.Tensor) -> torch.Tensor:
        return self.reveal_net(stego)

    def forward(self, cover: torch.Tensor, secret: torch.Tensor) -> dict[str, torch.Tensor]:
        stego = self.hide(cover, secret)
        return {"stego": stego, "revealed": self.reveal(self.noise(stego))}


def _head(in_ch: int, out_ch: int) -> nn.Conv2d:
    """Linear 1x1 output layer."""
    return nn.Conv2d(in_ch, out_ch, 1)


class Baluja(StegNet):
    """Baluja 2017 prep/hide/reveal nets (harveyslash/Deep-Steganography layout).

    Args:
        channels: image channels (3 RGB, 1 grayscale).
        filters: filters per branch (50 in the paper), so 3*filters channels.
        depth: conv layers per branch before the mixing layer (4 in the paper).
        noise_std: std of the Gaussian noise added to the stego image before the
            reveal net, in training only.
        residual: if true the hide net predicts stego - cover (not in the paper).
    """

    name = "baluja"

    def __init__(
        self,
        channels: int = 3,
        filters: int = 50,
        depth: int = 4,
        noise_std: float = 0.01,
        residual: bool = False,
    ):
        width = 3 * filters

        def trunk(in_ch: int) -> list[nn.Module]:
            return [Branches(in_ch, filters, depth=depth), Branches(width, filters, depth=1)]

        super().__init__(
            prep_net=nn.Sequential(*trunk(channels)),
            hide_net=nn.Sequential(*trunk(channels + width), _head(width, channels)),
            reveal_net=nn.Sequential(*trunk(channels), _head(width, channels)),
            noise_std=noise_std,
            residual=residual,
        )
        self.arch_config = dict(
            name=self.name, channels=channels, filters=filters, depth=depth,
            noise_std=noise_std, residual=residual,
        )


class CNN(StegNet):
    """The compact Keras-lineage net.

    Every layer is parallel 3x3/4x4/5x5 convs with ``widths`` filters (50, 10, 5:
    65 channels). ``prep_layers`` layers on the secret, ``hide_layers`` on cover
    plus prep features, ``reveal_layers`` on the stego image; hide and reveal end
    in a linear 1x1 output.
    """

    name = "cnn"

    def __init__(
        self,
        channels: int = 3,
        widths: Sequence[int] = (50, 10, 5),
        prep_layers: int = 2,
        hide_layers: int = 5,
        reveal_layers: int = 5,
        noise_std: float = 0.01,
        residual: bool = False,
    ):
        widths = [int(w) for w in widths]
        width = sum(widths)

        def stack(in_ch: int, n: int) -> list[nn.Module]:
            return [Branches(in_ch if i == 0 else width, widths) for i in range(n)]

        super().__init__(
            prep_net=nn.Sequential(*stack(channels, prep_layers)),
            hide_net=nn.Sequential(*stack(channels + width, hide_layers), _head(width, channels)),
            reveal_net=nn.Sequential(*stack(channels, reveal_layers), _head(width, channels)),
            noise_std=noise_std,
            residual=residual,
        )
        self.arch_config = dict(
            name=self.name, channels=channels, widths=widths, prep_layers=prep_layers,
            hide_layers=hide_layers, reveal_layers=reveal_layers, noise_std=noise_std,
            residual=residual,
        )


class SubpixelUNet(nn.Module):
    """Encoder-decoder of multi-kernel blocks with subpixel upsampling.

    Level ``l`` works at 1/2**l resolution with a :class:`Branches` block of
    ``widths[l]`` filters per kernel. Going down: a stride-2 3x3 conv. Going up:
    a 3x3 conv to 4x the channels and ``PixelShuffle(2)``, then the result is
    concatenated with the encoder's feature map of that level.
    Shapes: (B, in_ch, H, W) -> (B, out_ch, H, W), H and W multiples of 2**(L-1).
    """

    def __init__(self, in_ch: int, out_ch: int, widths: Sequence[int]):
        super().__init__()
        chans = [3 * int(w) for w in widths]
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        for level, w in enumerate(widths):
            if level > 0:
                self.downs.append(
                    nn.Sequential(nn.Conv2d(chans[level - 1], chans[level - 1], 3, stride=2, padding=1),
                                  nn.ReLU(inplace=True))
                )
            self.encoders.append(Branches(in_ch if level == 0 else chans[level - 1], int(w)))
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in range(len(widths) - 1, 0, -1):
            self.ups.append(
                nn.Sequential(nn.Conv2d(chans[level], 4 * chans[level - 1], 3, padding=1),
                              nn.PixelShuffle(2), nn.ReLU(inplace=True))
            )
            self.decoders.append(Branches(2 * chans[level - 1], int(widths[level - 1])))
        self.head = _head(chans[0], out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                x = self.downs[level - 1](x)
            x = encoder(x)
            skips.append(x)
        skips.pop()
        for up, decoder in zip(self.ups, self.decoders):
            x = decoder(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


class Subpixel(StegNet):
    """The subpixel-convolution autoencoder of the DIV2K seed.

    Two prep blocks (parallel 3x3/4x4/5x5 branches of ``prep_width`` filters) on
    the secret; a :class:`SubpixelUNet` hide net on cover plus prep features; a
    :class:`SubpixelUNet` reveal net on the stego image. ``widths`` gives the
    filters per branch at each level: the default is the small CPU preset
    (``conf/model/subpixel.yaml``); ``conf/model/subpixel_full.yaml`` has the
    seed's full widths for GPUs.
    """

    name = "subpixel"

    def __init__(
        self,
        channels: int = 3,
        prep_width: int = 8,
        widths: Sequence[int] = (8, 16, 32),
        noise_std: float = 0.0,
        residual: bool = False,
    ):
        widths = [int(w) for w in widths]
        prep = nn.Sequential(Branches(channels, prep_width), Branches(3 * prep_width, prep_width))
        super().__init__(
            prep_net=prep,
            hide_net=SubpixelUNet(channels + 3 * prep_width, channels, widths),
            reveal_net=SubpixelUNet(channels, channels, widths),
            noise_std=noise_std,
            residual=residual,
        )
        self.size_multiple = 2 ** (len(widths) - 1)
        self.arch_config = dict(
            name=self.name, channels=channels, prep_width=prep_width, widths=widths,
            noise_std=noise_std, residual=residual,
        )


class UnshuffleBody(nn.Module):
    """Two-level U-Net on space-to-depth features, back to full resolution.

    (B, in_ch, H, W) -> PixelUnshuffle(2) -> ``depth`` 3x3 convs of ``width`` at H/2
    -> PixelUnshuffle(2) -> ``depth`` convs of 2*width at H/4 -> PixelShuffle(2),
    concatenated with the H/2 features -> ``depth`` convs -> 1x1 to 4*out_ch ->
    PixelShuffle(2) -> (B, out_ch, H, W). H and W must be multiples of 4.
    """

    def __init__(self, in_ch: int, out_ch: int, width: int = 48, depth: int = 2):
        super().__init__()

        def convs(c_in: int, c_out: int) -> nn.Sequential:
            layers: list[nn.Module] = []
            for i in range(depth):
                layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            return nn.Sequential(*layers)

        self.enc_half = nn.Sequential(nn.PixelUnshuffle(2), convs(4 * in_ch, width))
        self.enc_quarter = nn.Sequential(nn.PixelUnshuffle(2), convs(4 * width, 2 * width))
        self.up = nn.Sequential(nn.Conv2d(2 * width, 4 * width, 1), nn.PixelShuffle(2))
        self.dec_half = convs(2 * width, width)
        self.head = nn.Sequential(nn.Conv2d(width, 4 * out_ch, 1), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.enc_half(x)
        quarter = self.enc_quarter(half)
        return self.head(self.dec_half(torch.cat([self.up(quarter), half], dim=1)))


class UnshuffleUNet(StegNet):
    """Residual hide net and reveal net built on :class:`UnshuffleBody`.

    The hide net sees cover and secret (no separate prep stage: the secret's
    pixels are rearranged into channels by the body's first PixelUnshuffle) and
    adds a residual to the cover. The residual's last layer starts at zero, so
    training starts from stego = cover and learns how much to change it.
    """

    name = "unet"
    size_multiple = 4

    def __init__(self, channels: int = 3, width: int = 48, depth: int = 2, noise_std: float = 0.0):
        hide_body = UnshuffleBody(2 * channels, channels, width, depth)
        nn.init.zeros_(hide_body.head[0].weight)
        nn.init.zeros_(hide_body.head[0].bias)
        super().__init__(
            prep_net=nn.Identity(),
            hide_net=hide_body,
            reveal_net=UnshuffleBody(channels, channels, width, depth),
            noise_std=noise_std,
            residual=True,
        )
        self.arch_config = dict(name=self.name, channels=channels, width=width, depth=depth, noise_std=noise_std)


def wrap_period(x: torch.Tensor, period: float) -> torch.Tensor:
    """``x`` folded into [-period/2, period/2) by subtracting a multiple of ``period``."""
    return x - period * torch.floor(x / period + 0.5)


class QIMNet(StegNet):
    """Learned quantization-index modulation: the secret lives in the stego pixels' residues.

    Hide: the secret becomes a code ``t`` in levels of one period ``P``,
    ``t = (P - 1) * (secret + correction) + dither``, where the correction comes
    from an encoder (an :class:`UnshuffleBody` on cover and secret whose last
    layer starts at zero) and the dither is a fixed pseudo-random pattern in
    [-1/2, 1/2) that repeats every ``DITHER`` pixels. Each stego pixel is the
    8-bit value nearest the cover pixel that equals ``round(t)`` modulo ``P``:
    "dirty-paper" coding, in which the hide net knows the cover, so the cover
    does not mask the code, and the stego error is at most ``P / 2`` levels
    (about 36.7 dB PSNR at ``P = 13``) whatever the secret.

    Reveal: ``stego mod P`` minus the dither gives the secret to within a
    rounding error that the dither makes signal-independent noise (no banding);
    a decoder (:class:`UnshuffleBody`, last layer at zero) that sees this coarse
    secret and its phase (cos, sin) learns to remove that noise from context.

    ``period`` sets the trade-off: a larger period, a worse stego image and a
    finer secret. The code lives in exact 8-bit values, so it survives lossless
    PNG only: any change of the stego pixels (noise, JPEG, resizing) destroys it,
    which is why there is no noise layer. Shapes: images (B, C, H, W), H and W
    multiples of 8 (the dither pattern's period, a multiple of the U-Nets' 4).
    """

    name = "qim"
    DITHER = 8
    size_multiple = DITHER

    def __init__(self, channels: int = 3, period: int = 13, width: int = 48, depth: int = 2,
                 encoder: bool = True, dither: bool = True):
        if isinstance(period, bool) or not isinstance(period, int) or not 2 <= period <= 256:
            raise ValueError(f"period must be an integer in [2, 256], got {period!r}")
        enc = UnshuffleBody(2 * channels, channels, width, depth) if encoder else nn.Identity()
        dec = UnshuffleBody(3 * channels, channels, width, depth)
        for body in (enc, dec):
            if isinstance(body, UnshuffleBody):
                nn.init.zeros_(body.head[0].weight)
                nn.init.zeros_(body.head[0].bias)
        super().__init__(prep_net=nn.Identity(), hide_net=enc, reveal_net=dec)
        self.period = period
        self.encoder = encoder
        pattern = torch.zeros(1, channels, self.DITHER, self.DITHER)
        if dither:  # fixed seed: the pattern is part of the architecture, not of the weights
            pattern = torch.rand(pattern.shape, generator=torch.Generator().manual_seed(20171204)) - 0.5
        self.register_buffer("dither", pattern, persistent=False)
        self.arch_config = dict(name=self.name, channels=channels, period=period, width=width,
                                depth=depth, encoder=encoder, dither=dither)

    def _dither_like(self, x: torch.Tensor) -> torch.Tensor:
        reps = (x.shape[-2] // self.DITHER, x.shape[-1] // self.DITHER)
        return self.dither.to(x.dtype).repeat(1, 1, *reps)

    def code(self, cover: torch.Tensor, secret: torch.Tensor) -> torch.Tensor:
        """The secret as target residues in levels (only the value mod P counts)."""
        value = secret
        if self.encoder:
            value = value + self.hide_net(torch.cat([cover, secret], dim=1))
        return (self.period - 1) * value + self._dither_like(secret)

    def hide(self, cover: torch.Tensor, secret: torch.Tensor) -> torch.Tensor:
        levels = torch.round(cover.clamp(0, 1) * 255.0)
        stego = levels + wrap_period(self.code(cover, secret) - levels, self.period)
        # Stay inside 0..255 by moving to the neighbouring value of the same residue.
        stego = torch.where(stego < -0.5, stego + self.period, stego)
        stego = torch.where(stego > 255.5, stego - self.period, stego)
        return stego / 255.0

    def reveal(self, stego: torch.Tensor) -> torch.Tensor:
        residue = torch.remainder(stego * 255.0, self.period)
        # Undo the dither; fold into [-1/2, P - 1/2) so that residue 0 with a
        # positive dither reads as a little below 0, not a little below P.
        code = torch.remainder(residue - self._dither_like(stego) + 0.5, self.period) - 0.5
        phase = code * (2 * torch.pi / self.period)
        coarse = code / (self.period - 1)
        return coarse + self.reveal_net(torch.cat([coarse, torch.cos(phase), torch.sin(phase)], dim=1))


ARCHITECTURES: dict[str, type[StegNet]] = {cls.name: cls for cls in (Baluja, Subpixel, CNN, UnshuffleUNet, QIMNet)}


def build_net(name: str, **kwargs) -> StegNet:
    """Rebuild an architecture from its ``arch_config`` (no Hydra needed)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; expected one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name](**kwargs)
