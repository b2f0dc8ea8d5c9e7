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
- :attr:`StegNet.keyed`: whether the method takes a secret key. Every
  architecture takes the constructor options ``keyed=True`` and ``key_block``
  (``model.keyed=true``; recorded in ``arch_config``); qim is keyed by construction.

**The keyed protocol.** A method owns its keyed hide and reveal of whole images:
:meth:`StegNet.hide_with_key` and :meth:`StegNet.reveal_with_key`. Inference
(:class:`steg.inference.model.StegModel`), training (:meth:`StegNet.forward`), validation,
the ONNX export and ``steg analyze`` make that one call, with or without a key, and
never ask which method they hold. The base class's default, for every net, scrambles
the secret around the net (:mod:`steg.security.scramble`) and carries a per-image nonce inside
the scrambled secret; :class:`steg.nets.QIMNet` overrides both with its keyed dither
and a nonce in its stego pixels' residues. A new keyed method overrides the two
methods in its own file (and, if it trains on keys, :meth:`StegNet.training_keys`):
nothing else changes. A method that is not a net (the digital one) offers the same
two calls with the same arguments.

*Tiling.* The caller says how the method's net functions are run over whole images:
``run(fn, inputs, per_tile=None)`` (:data:`Runner`), e.g. StegModel pads and tiles
them in bounded memory on its device; the default :func:`run_whole` calls ``fn``
once. A keyed transform of whole images (the scrambling, a nonce written into the
stego) happens before or after ``run``; what a net function needs per tile (qim's
keyed dither) comes from ``per_tile(window, padded)``: the tile's window ``(y0, y1,
x0, x1)`` in the padded image of size ``padded = (H', W')`` -> the extra keyword
arguments of ``fn`` for that tile, tensors of the tile's height and width.

*Nonces.* ``nonce`` says whether each image draws its own nonce: False for keys
that are already fresh per image (training, validation, an attacker's own keys);
True for a user's key (a fresh random nonce per image: one key, many images);
bytes for a fixed nonce (reproducible tests).

*Analysis.* Two more hooks let ``steg analyze`` attack a method without knowing it:
:meth:`StegNet.attacker_view` (what a learned thief sees of a stego image) and
:meth:`StegNet.known_secret_attack` (reveal other stego images from one known pair
hidden with the same key).

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

import functools
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from steg.security.keys import Keys, per_image
from steg.nets.layers import GaussianNoise
from steg.precision import fp32
from steg.quantize import round_channel

__all__ = ["StegNet", "PrepHideReveal", "Runner", "PerTile", "run_whole", "draw_nonce", "plain"]

#: Key stream of the fixed validation keys (not secrets: see :meth:`StegNet.validation_keys`).
_VALIDATION_KEYS = "steg/validation-keys"


def plain(value: Any) -> Any:
    """``value`` with mappings and sequences (OmegaConf's too) turned into dicts and lists, for JSON."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


#: How a method's net function runs over whole images: ``run(fn, inputs, per_tile=None) -> output``
#: (see the module docstring; :func:`run_whole`, :meth:`steg.inference.model.StegModel.run`).
Runner = Callable[..., torch.Tensor]
#: ``per_tile(window, padded) -> {name: tensor}``: extra keyword arguments of a net function for one tile.
PerTile = Callable[[tuple[int, int, int, int], tuple[int, int]], dict[str, torch.Tensor]]


def run_whole(fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor],
              per_tile: PerTile | None = None) -> torch.Tensor:
    """The plain :data:`Runner`: ``fn(*inputs, **per_tile(whole image))`` in one piece, where the inputs are.

    Shapes: inputs (B, C, H, W) with H, W multiples of the net's ``size_multiple``.
    """
    h, w = (int(v) for v in inputs[0].shape[-2:])
    return fn(*inputs, **(per_tile((0, h, 0, w), (h, w)) if per_tile is not None else {}))


def draw_nonce(nonce: bool | bytes, size: int) -> bytes | None:
    """The nonce of one image: None for ``nonce=False``, fresh OS random bytes for True, else ``nonce`` checked."""
    if nonce is False:
        return None
    if nonce is True:
        return os.urandom(size)
    if len(nonce) != size:
        raise ValueError(f"nonce: expected {size} bytes, got {len(nonce)}")
    return bytes(nonce)


def _recording(init: Callable[..., None]) -> Callable[..., None]:
    """``init`` (a StegNet class's ``__init__``) that records its arguments and takes ``keyed=``/``key_block=``.

    The outermost ``__init__`` of a construction (the class's own, not the ``super()``
    calls it makes) binds its arguments to its signature, with defaults, into
    ``_init_args`` (what :attr:`StegNet.arch_config` returns), and takes the reserved
    options ``keyed`` and ``key_block`` that every architecture has without naming
    them: ``keyed=True`` sets the instance's :attr:`StegNet.keyed` after ``__init__``,
    ``key_block`` the side of the squares its key scrambles (:mod:`steg.security.scramble`).
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self, *args: Any, keyed: bool = False, key_block: int | None = None, **kwargs: Any) -> None:
        if "_init_args" in self.__dict__:  # a super().__init__ call inside the outermost one
            init(self, *args, **kwargs)
            return
        from steg.security.scramble import DEFAULT_BLOCK, _check_block

        if not isinstance(keyed, bool):
            raise ValueError(f"keyed must be true or false, got {keyed!r}")
        block = _check_block(DEFAULT_BLOCK if key_block is None else key_block)
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:  # let __init__ raise its own error
            init(self, *args, **kwargs)
            raise
        bound.apply_defaults()
        params = dict(bound.arguments)
        params.pop(next(iter(params)))  # self
        object.__setattr__(self, "_init_args", {k: plain(v) for k, v in params.items()})
        init(self, *args, **kwargs)
        if keyed and not type(self).keyed:
            self.keyed, self.key_block = True, block

    return __init__


class StegNet(nn.Module):
    """Base class: ``hide(cover, secret) -> stego``, ``reveal(stego) -> secret``, ``noise`` between.

    Subclasses implement :meth:`hide` and :meth:`reveal` and may override
    ``size_multiple``, :meth:`receptive_radius`, :meth:`feature_channels` and
    :meth:`tiny`; a keyed method of its own overrides :meth:`hide_with_key` and
    :meth:`reveal_with_key`. Their constructor arguments are recorded in :attr:`arch_config`
    without any code of theirs (they must be JSON values: numbers, strings,
    booleans, lists, dicts), so a model file can rebuild them: ``__init_subclass__``
    wraps each class's ``__init__`` (:func:`_recording`), which also takes the
    options ``keyed=`` and ``key_block=`` of every architecture.

    Shapes: ``hide``: (B, C, H, W) x2 -> (B, C, H, W), unclamped;
    ``reveal``: (B, C, H, W) -> (B, C, H, W), unclamped; H and W multiples of
    ``size_multiple``.
    """

    #: Registry name (``conf/model/NAME.yaml``); a user's class may keep the default.
    name: ClassVar[str] = "stegnet"
    #: Image sides must be multiples of this.
    size_multiple: int = 1
    #: Whether this net takes a secret key: ``keyed=True`` at construction (any class), or True on a
    #: class that is keyed by construction (qim).
    keyed: bool = False
    #: Side of the squares the default keyed mode scrambles (:mod:`steg.security.scramble`; ``key_block=``).
    key_block: int = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every class that defines ``__init__`` records its constructor arguments (see :func:`_recording`)."""
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording(cls.__dict__["__init__"])

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
        if self.keyed and not cls.keyed:  # the keyed=True option (a class keyed by construction records nothing)
            config.update(keyed=True, key_block=self.key_block)
        return config

    def receptive_radius(self) -> int | None:
        """How far (pixels) an output pixel of ``hide`` or ``reveal`` sees; None if unknown (tiles get 64)."""
        return None

    def feature_channels(self) -> float:
        """Channels of the widest feature map at full resolution (a 1/2**l map counts 1/4**l).

        Peak activation memory per pixel is about
        ``steg.inference.tiling.BYTES_PER_PIXEL_CHANNEL`` times this. Default: the widest
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
        """Refuse ``key`` (one line) in the raw ``hide``/``reveal`` of a net: keys go through the keyed protocol."""
        if key is None:
            return
        self.check_key(key)
        raise ValueError(f"{type(self).__name__}.hide/reveal take no key: a keyed {self.name!r} net's key "
                         "scrambles whole images (use hide_with_key/reveal_with_key, or steg.load_model)")

    # -- the keyed protocol (see the module docstring) --------------------------------
    def check_key(self, key) -> None:
        """Refuse a key (one line) if this net has no keyed mode; None always passes."""
        if key is not None and not self.keyed:
            raise ValueError(f"architecture {self.name!r} has no keyed mode: train it with model.keyed=true "
                             "(or use qim), or hide and reveal without a key")

    def hide_with_key(self, cover: torch.Tensor, secret: torch.Tensor, key: Keys | None = None, *,
                      run: Runner = run_whole, nonce: bool | bytes = False) -> torch.Tensor:
        """Stego images of whole images with ``key``: (B, C, H, W) x2 -> (B, C, H, W), unclamped.

        ``key``: bytes (a derived key: :func:`steg.security.keys.derive_key`) for every image,
        one key per image, or None (the keyless :meth:`hide`). ``run``: how
        :meth:`hide` runs over the images (:data:`Runner`); ``nonce``: see the module
        docstring. The default keyed mode hides :func:`steg.security.scramble.scramble` of the
        secret under each image's key, or, with a nonce,
        :func:`steg.security.scramble.scramble_secret` (the nonce travels inside it).
        """
        if key is None:
            return run(self.hide, [cover, secret])
        self.check_key(key)
        from steg.security.scramble import NONCE_BYTES, scramble_secret

        keys = per_image(key, secret.shape[0])
        if nonce is False:
            hidden = self.hidden_secret(secret, keys)
        else:
            hidden = torch.cat([scramble_secret(secret[i : i + 1], k, self.key_block, draw_nonce(nonce, NONCE_BYTES))
                                for i, k in enumerate(keys)])
        return run(self.hide, [cover, hidden])

    def reveal_with_key(self, stego: torch.Tensor, key: Keys | None = None, *,
                        run: Runner = run_whole, nonce: bool = False) -> torch.Tensor:
        """Revealed secrets of whole images with the key(s) and ``nonce`` mode given to :meth:`hide_with_key`.

        (B, C, H, W) -> (B, C, H, W), unclamped. A wrong key gives an image (noise),
        never an error: a steganography tool must not confirm that something is hidden.
        """
        revealed = run(self.reveal, [stego])
        if key is None:
            return revealed
        self.check_key(key)
        from steg.security.scramble import unscramble, unscramble_secret

        keys = per_image(key, stego.shape[0])
        if not nonce:
            return unscramble(revealed, keys, self.key_block)
        return torch.cat([unscramble_secret(revealed[i : i + 1], k, self.key_block) for i, k in enumerate(keys)])

    def hidden_secret(self, secret: torch.Tensor, keys: Keys | None) -> torch.Tensor:
        """The secret as this method's keyed hide feeds it to :meth:`hide` (no nonce): (B, C, H, W) -> (B, C, H, W).

        Default: :func:`steg.security.scramble.scramble` under each image's key; the secret itself for ``keys=None``.
        Training under a cropping distortion compares the revealed window with this image's window.
        """
        if keys is None:
            return secret
        from steg.security.scramble import scramble

        return scramble(secret, per_image(keys, secret.shape[0]), self.key_block)

    def training_keys(self, batch: int) -> list[bytes] | None:
        """A fresh key for each image of a training batch; None for a net that trains without keys.

        The default keyed mode trains on keys (the net learns to hide scrambled
        secrets); a method whose keyed mode needs no training (qim) returns None.
        Training keys are not secrets, only samples of "any key": they are drawn
        from torch's (seeded) generator so that a seeded run repeats exactly. The
        scrambling they select still comes from SHAKE-256 (:mod:`steg.security.scramble`).
        """
        if not self.keyed:
            return None
        from steg.security.keys import KEY_BYTES

        raw = torch.randint(0, 256, (batch, KEY_BYTES), dtype=torch.uint8)
        return [bytes(row.tolist()) for row in raw]

    def validation_keys(self, batch: int, index: int) -> list[bytes] | None:
        """Fixed keys for validation batch ``index`` (the same every epoch); None when :meth:`training_keys` is."""
        if not self.keyed:
            return None
        from steg.security.keys import KEY_BYTES, key_stream

        return [key_stream(_VALIDATION_KEYS.encode(), f"{index}/{i}", KEY_BYTES) for i in range(batch)]

    def attacker_view(self, stego: torch.Tensor) -> torch.Tensor:
        """What a learned attacker (:class:`steg.security.leakage.Thief`) sees of 8-bit stego images: (B, C, H, W) -> (B, C', H, W).

        Default: the image itself; a method with public structure adds it (qim: its residue phase).
        """
        return stego

    def known_secret_attack(self, stego: torch.Tensor, secret: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """An attack on key reuse: from one known (stego, secret) pair, (1, C, H, W) each, a reveal of
        other 8-bit stego images of that size hidden with the same key; None if the method has none."""
        return None

    def forward(self, cover: torch.Tensor, secret: torch.Tensor, quantize: bool | str = False,
                distortion: nn.Module | None = None) -> dict[str, torch.Tensor]:
        """The training path: hide, rounding (``quantize``), noise, distortion, reveal.

        ``quantize``: what the reveal net sees of the stego image, a rounding mode of
        :func:`steg.quantize.round_channel` (``"ste"``: 8-bit with a straight-through
        gradient; ``"noise"``: one level of uniform noise; ``"both"``: half the batch each;
        ``"none"``: the float stego), or True (= ``"ste"``) / False (= ``"none"``).
        ``distortion``: a :mod:`steg.distortions.layers` module called as ``distortion(stego, cover)``.
        Returns ``stego`` (after the rounding: what the losses compare with the
        cover), ``revealed``, and ``target``: the secret cut to the window the reveal net
        saw (the secret itself unless the distortion crops).

        A keyed net that trains on keys (:meth:`training_keys`, a fresh key per image)
        hides and reveals through :meth:`hide_with_key` / :meth:`reveal_with_key`, so
        the losses see the image the user gets. Under a cropping distortion the
        keyed reveal of a window cannot be undone (the default mode scatters the
        secret's pixels), so there ``revealed`` is the net's raw reveal of the
        window and ``target`` the same window of :meth:`hidden_secret` (MSE does
        not care about the order of pixels).
        """
        keys = self.training_keys(secret.shape[0])
        stego = self.hide_with_key(cover, secret, keys)
        stego = round_channel(stego, ("ste" if quantize else "none") if isinstance(quantize, bool) else quantize)
        seen, target, box = self.noise(stego), secret, None
        if distortion is not None:
            distorted = distortion(seen, cover)
            seen, box = distorted.image, distorted.box
            if box is not None:
                target = distorted.crop(self.hidden_secret(secret, keys))
        if box is None:
            revealed = self.reveal_with_key(seen, keys)
        else:
            revealed = self.reveal(seen)
        return {"stego": stego, "revealed": revealed, "target": target}

    #: Weights of the terms that :meth:`extra_losses` returns, by name.
    extra_loss_weights: dict[str, float] = {}

    def extra_losses(self, cover, secret, stego, revealed) -> dict[str, torch.Tensor]:
        """Architecture-specific loss terms (unweighted scalars); the module adds them times ``extra_loss_weights``."""
        return {}


StegNet.__init__ = _recording(StegNet.__init__)  # a subclass without an __init__ of its own inherits this one


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
