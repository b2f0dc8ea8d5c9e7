"""The base class of every architecture: what the rest of steg needs to know about a net.

A :class:`StegNet` hides a secret image in a cover image (``hide``) and gets it
back from the stego image (``reveal``); ``noise`` is a training-only distortion
between the two. Everything outside :mod:`steg.nets` (training, tiling, model
files, the benchmark, the tests) asks the net, never its name:

- ``size_multiple``: image sides must be multiples of it (inference pads);
- :meth:`StegNet.receptive_radius`: how far an output pixel sees (tile margins);
- :meth:`StegNet.feature_channels`: activation channels per pixel (tile sizes);
- :attr:`StegNet.arch_config`: the constructor arguments, recorded automatically,
  so that a model file can rebuild the net without Hydra;
- :meth:`StegNet.tiny`: constructor arguments of a seconds-fast version for tests.

The classic prep + hide + reveal layout of Baluja's lineage is
:class:`PrepHideReveal`; other designs (QIM, invertible nets) subclass
:class:`StegNet` directly.

Shapes: images are float tensors in [0, 1], (B, C, H, W), C = ``channels``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from steg.nets.layers import GaussianNoise
from steg.quantize import quantize_ste

__all__ = ["StegNet", "PrepHideReveal", "plain"]


def plain(value: Any) -> Any:
    """``value`` with mappings and sequences (OmegaConf's too) turned into dicts and lists, for JSON."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


class StegNet(nn.Module):
    """Base class: ``hide(cover, secret) -> stego``, ``reveal(stego) -> secret``, ``noise`` between.

    Subclasses implement :meth:`hide` and :meth:`reveal` and may override
    ``size_multiple``, :meth:`receptive_radius`, :meth:`feature_channels` and
    :meth:`tiny`. Their constructor arguments are recorded in :attr:`arch_config`
    without any code of theirs (they must be JSON values: numbers, strings,
    booleans, lists, dicts), so a model file can rebuild them.

    Shapes: ``hide``: (B, C, H, W) x2 -> (B, C, H, W), unclamped;
    ``reveal``: (B, C, H, W) -> (B, C, H, W), unclamped; H and W multiples of
    ``size_multiple``.
    """

    #: Registry name (``conf/model/NAME.yaml``); a user's class may keep the default.
    name: ClassVar[str] = "stegnet"
    #: Image sides must be multiples of this.
    size_multiple: int = 1
    #: Whether ``hide``/``reveal`` take a ``key`` (only :class:`~steg.nets.qim.QIMNet` so far).
    keyed: ClassVar[bool] = False

    def __new__(cls, *args: Any, **kwargs: Any):
        obj = super().__new__(cls)
        try:
            bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        except TypeError:  # let __init__ raise its own error
            bound = None
        if bound is not None:
            bound.apply_defaults()
            params = dict(bound.arguments)
            params.pop(next(iter(params)))  # self
            object.__setattr__(obj, "_init_args", {k: plain(v) for k, v in params.items()})
        return obj

    def __init__(self, noise_std: float = 0.0):
        super().__init__()
        self.noise = GaussianNoise(noise_std)

    # -- what the rest of steg asks --------------------------------------------------
    @property
    def arch_config(self) -> dict[str, Any]:
        """The rebuild config: ``name``, ``target`` for classes outside :mod:`steg.nets`, the arguments.

        Built-in nets are named by their registry name only (stable across
        refactors); any other class also by its import path, so that a model file
        of a user's own architecture loads wherever that module is importable.
        """
        cls = type(self)
        config: dict[str, Any] = {"name": cls.name}
        if not cls.__module__.startswith("steg.nets.") or cls.__qualname__ != cls.__name__:
            config["target"] = f"{cls.__module__}.{cls.__qualname__}"
        config.update(getattr(self, "_init_args", {}))
        return config

    def receptive_radius(self) -> int | None:
        """How far (pixels) an output pixel of ``hide`` or ``reveal`` sees; None if unknown (tiles get 64)."""
        return None

    def feature_channels(self) -> float:
        """Channels of the widest feature map at full resolution (a 1/2**l map counts 1/4**l).

        Peak activation memory per pixel is about
        ``steg.inference.BYTES_PER_PIXEL_CHANNEL`` times this. Default: the widest
        conv (input plus output channels), an overestimate for multi-scale nets.
        """
        convs = [m.in_channels + m.out_channels for m in self.modules() if isinstance(m, nn.Conv2d)]
        return float(max(convs, default=64))

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Constructor arguments of a seconds-fast version of this net, for tests and smoke runs."""
        return {}

    # -- the nets ---------------------------------------------------------------------
    def hide(self, cover: torch.Tensor, secret: torch.Tensor, key=None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement hide(cover, secret)")

    def reveal(self, stego: torch.Tensor, key=None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement reveal(stego)")

    def _no_key(self, key) -> None:
        """Refuse ``key`` (one line) unless this architecture is :attr:`keyed`."""
        if key is not None and not self.keyed:
            raise ValueError(f"architecture {self.name!r} has no keyed mode (only qim takes a key); "
                             "hide and reveal without a key")

    def forward(self, cover: torch.Tensor, secret: torch.Tensor, quantize: bool = False,
                distortion: nn.Module | None = None) -> dict[str, torch.Tensor]:
        """The training path: hide, (8-bit with a straight-through gradient), noise, distortion, reveal.

        ``distortion``: a :mod:`steg.distortions` module called as ``distortion(stego, cover)``.
        Returns ``stego`` (quantized if ``quantize``: what the losses compare with the
        cover), ``revealed``, and ``target``: the secret cut to the window the reveal net
        saw (the secret itself unless the distortion crops).
        """
        stego = self.hide(cover, secret)
        if quantize:
            stego = quantize_ste(stego)
        seen, target = self.noise(stego), secret
        if distortion is not None:
            distorted = distortion(seen, cover)
            seen, target = distorted.image, distorted.crop(secret)
        return {"stego": stego, "revealed": self.reveal(seen), "target": target}

    #: Weights of the terms that :meth:`extra_losses` returns, by name.
    extra_loss_weights: dict[str, float] = {}

    def extra_losses(self, cover, secret, stego, revealed) -> dict[str, torch.Tensor]:
        """Architecture-specific loss terms (unweighted scalars); the module adds them times ``extra_loss_weights``."""
        return {}


class PrepHideReveal(StegNet):
    """The classic layout: a prep net on the secret, a hide net on cover + prep features, a reveal net.

    ``hide``: ``hide_net(cat(cover, prep_net(secret)))`` (plus the cover if
    ``residual``); ``reveal``: ``reveal_net(stego)``.
    """

    def __init__(self, prep_net: nn.Module, hide_net: nn.Module, reveal_net: nn.Module,
                 noise_std: float = 0.0, residual: bool = False):
        super().__init__(noise_std)
        self.prep_net = prep_net
        self.hide_net = hide_net
        self.reveal_net = reveal_net
        self.residual = residual

    def hide(self, cover: torch.Tensor, secret: torch.Tensor, key=None) -> torch.Tensor:
        self._no_key(key)
        out = self.hide_net(torch.cat([cover, self.prep_net(secret)], dim=1))
        return cover + out if self.residual else out

    def reveal(self, stego: torch.Tensor, key=None) -> torch.Tensor:
        self._no_key(key)
        return self.reveal_net(stego)
