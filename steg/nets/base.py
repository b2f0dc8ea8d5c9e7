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
- :meth:`StegNet.tiny`: constructor arguments of a seconds-fast version for tests;
- :attr:`StegNet.keyed`: whether hide and reveal take a secret key. Every
  architecture takes the constructor options ``keyed=True`` and ``key_block``
  (``model.keyed=true``; recorded in ``arch_config``): the key then scrambles the
  secret around the net (:mod:`steg.scramble`), in training (a fresh key per
  image), validation and inference alike. qim is keyed by construction (its key
  sets its dither: :attr:`StegNet.native_key`).

The classic prep + hide + reveal layout of Baluja's lineage is
:class:`PrepHideReveal`; other designs (QIM, invertible nets) subclass
:class:`StegNet` directly.

Shapes: images are float tensors in [0, 1], (B, C, H, W), C = ``channels``.

Mixed precision: under ``bf16-mixed`` autocast an architecture's convolutions run
in bf16; what must stay exact (the residual added to the cover, the rounding to 8
bits, an invertible net's transforms and couplings, qim's modular arithmetic) runs
in float32 with autocast off through :func:`steg.precision.fp32`. Each
architecture's docstring says which parts run in bf16.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from steg.nets.layers import GaussianNoise
from steg.precision import fp32
from steg.quantize import quantize_ste

__all__ = ["StegNet", "PrepHideReveal", "plain"]

#: Key stream of the fixed validation keys (not secrets: see :meth:`StegNet.validation_keys`).
_VALIDATION_KEYS = "steg/validation-keys"


def plain(value: Any) -> Any:
    """``value`` with mappings and sequences (OmegaConf's too) turned into dicts and lists, for JSON."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


class _StegNetType(type):
    """Metaclass of :class:`StegNet`: ``keyed=`` and ``key_block=`` are constructor options of every architecture.

    They are taken here, before the class's own ``__init__`` runs, so that a user's
    subclass gets a keyed mode without naming them in its signature (the names are
    reserved). ``keyed=True`` sets the instance's :attr:`StegNet.keyed`;
    ``key_block`` the side of the squares its key scrambles (:mod:`steg.scramble`).
    """

    def __call__(cls, *args: Any, keyed: bool = False, key_block: int | None = None, **kwargs: Any):
        from steg.scramble import DEFAULT_BLOCK, _check_block

        if not isinstance(keyed, bool):
            raise ValueError(f"keyed must be true or false, got {keyed!r}")
        block = _check_block(DEFAULT_BLOCK if key_block is None else key_block)
        net = super().__call__(*args, **kwargs)
        if keyed and not cls.native_key:
            net.keyed, net.key_block = True, block
        return net


class StegNet(nn.Module, metaclass=_StegNetType):
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
    #: Whether this net takes a secret key: ``keyed=True`` at construction (any class), or qim.
    keyed: bool = False
    #: Whether the key goes into ``hide``/``reveal`` themselves (qim's keyed dither); otherwise
    #: a keyed net's key scrambles the secret around them (:mod:`steg.scramble`).
    native_key: ClassVar[bool] = False
    #: Side of the squares a keyed net's key scrambles (:mod:`steg.scramble`; ``key_block=``).
    key_block: int = 1

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
        if self.scrambles:
            config.update(keyed=True, key_block=self.key_block)
        return config

    def receptive_radius(self) -> int | None:
        """How far (pixels) an output pixel of ``hide`` or ``reveal`` sees; None if unknown (tiles get 64)."""
        return None

    def feature_channels(self) -> float:
        """Channels of the widest feature map at full resolution (a 1/2**l map counts 1/4**l).

        Peak activation memory per pixel is about
        ``steg.tiling.BYTES_PER_PIXEL_CHANNEL`` times this. Default: the widest
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
        """Refuse ``key`` (one line) in ``hide``/``reveal`` of a net whose key is not :attr:`native_key`."""
        if key is None or self.native_key:
            return
        if not self.keyed:
            raise ValueError(f"architecture {self.name!r} has no keyed mode: train it with model.keyed=true "
                             "(or use qim), or hide and reveal without a key")
        raise ValueError(f"{type(self).__name__}.hide/reveal take no key: a keyed {self.name!r} net's key "
                         "scrambles whole images (use hide_with_key/reveal_with_key, or steg.load_model)")

    # -- keys -------------------------------------------------------------------------
    @property
    def scrambles(self) -> bool:
        """Whether a key scrambles the secret around this net (a keyed net without :attr:`native_key`)."""
        return self.keyed and not self.native_key

    def hide_with_key(self, cover: torch.Tensor, secret: torch.Tensor, key=None) -> torch.Tensor:
        """``hide`` of whole images with ``key``: bytes (a derived key), one key per image, or None.

        A scrambling net hides :func:`steg.scramble.scramble` of the secret (no
        nonce: :class:`steg.inference.StegModel` adds one per image); qim gets the key
        itself. Shapes as :meth:`hide`.
        """
        if self.native_key:
            return self.hide(cover, secret, key=key)
        if key is None:
            return self.hide(cover, secret)
        self._check_scrambles()
        from steg.scramble import scramble

        return self.hide(cover, scramble(secret, key, self.key_block))

    def reveal_with_key(self, stego: torch.Tensor, key=None) -> torch.Tensor:
        """``reveal`` of whole images with the key(s) given to :meth:`hide_with_key`. Shapes as :meth:`reveal`."""
        if self.native_key:
            return self.reveal(stego, key=key)
        if key is None:
            return self.reveal(stego)
        self._check_scrambles()
        from steg.scramble import unscramble

        return unscramble(self.reveal(stego), key, self.key_block)

    def _check_scrambles(self) -> None:
        if not self.scrambles:
            self._no_key(b"key")

    def training_keys(self, batch: int) -> list[bytes] | None:
        """A fresh key for each image of a training batch; None unless :attr:`scrambles`.

        Training keys are not secrets, only samples of "any key": they are drawn
        from torch's (seeded) generator so that a seeded run repeats exactly. The
        scrambling they select still comes from SHAKE-256 (:mod:`steg.scramble`).
        """
        if not self.scrambles:
            return None
        from steg.keys import KEY_BYTES

        raw = torch.randint(0, 256, (batch, KEY_BYTES), dtype=torch.uint8)
        return [bytes(row.tolist()) for row in raw]

    def validation_keys(self, batch: int, index: int) -> list[bytes] | None:
        """Fixed keys for validation batch ``index`` (the same every epoch); None unless :attr:`scrambles`."""
        if not self.scrambles:
            return None
        from steg.keys import KEY_BYTES, key_stream

        return [key_stream(_VALIDATION_KEYS.encode(), f"{index}/{i}", KEY_BYTES) for i in range(batch)]

    def forward(self, cover: torch.Tensor, secret: torch.Tensor, quantize: bool = False,
                distortion: nn.Module | None = None) -> dict[str, torch.Tensor]:
        """The training path: hide, (8-bit with a straight-through gradient), noise, distortion, reveal.

        ``distortion``: a :mod:`steg.distortions` module called as ``distortion(stego, cover)``.
        Returns ``stego`` (quantized if ``quantize``: what the losses compare with the
        cover), ``revealed``, and ``target``: the secret cut to the window the reveal net
        saw (the secret itself unless the distortion crops).

        A scrambling keyed net hides the secret scrambled under a fresh key per image
        (:meth:`training_keys`) and unscrambles what it reveals, so the losses see the
        image the user gets. Under a cropping distortion the window of the scrambled
        image holds scattered pixels of the secret, so there ``revealed`` and ``target``
        stay scrambled (MSE does not care about the order of pixels).
        """
        keys = self.training_keys(secret.shape[0])
        hidden = secret
        if keys is not None:
            from steg.scramble import scramble, unscramble

            hidden = scramble(secret, keys, self.key_block)
        stego = self.hide(cover, hidden)
        if quantize:
            stego = quantize_ste(stego)
        seen, target, box = self.noise(stego), hidden, None
        if distortion is not None:
            distorted = distortion(seen, cover)
            seen, target, box = distorted.image, distorted.crop(hidden), distorted.box
        revealed = self.reveal(seen)
        if keys is not None and box is None:
            revealed, target = unscramble(revealed, keys, self.key_block), secret
        return {"stego": stego, "revealed": revealed, "target": target}

    #: Weights of the terms that :meth:`extra_losses` returns, by name.
    extra_loss_weights: dict[str, float] = {}

    def extra_losses(self, cover, secret, stego, revealed) -> dict[str, torch.Tensor]:
        """Architecture-specific loss terms (unweighted scalars); the module adds them times ``extra_loss_weights``."""
        return {}


@fp32
def _add_residual(cover: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """``cover + residual`` in float32, autocast off (a bf16 sum would round the cover to ~2 levels)."""
    return cover + residual


class PrepHideReveal(StegNet):
    """The classic layout: a prep net on the secret, a hide net on cover + prep features, a reveal net.

    ``hide``: ``hide_net(cat(cover, prep_net(secret)))`` (plus the cover if
    ``residual``); ``reveal``: ``reveal_net(stego)``. Under bf16 autocast the three
    nets run in bf16; the residual is added to the cover in float32.
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
        return _add_residual(cover, out) if self.residual else out

    def reveal(self, stego: torch.Tensor, key=None) -> torch.Tensor:
        self._no_key(key)
        return self.reveal_net(stego)
