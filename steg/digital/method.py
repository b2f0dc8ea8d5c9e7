"""The digital hiding method: the user-facing class, with the same API as :class:`steg.inference.model.StegModel`.

    from steg import load_model
    model = load_model("digital", profile="default")   # or capacity, stealth, robust
    stego = model.hide(cover, secret, key="passphrase")  # PIL in -> 8-bit PIL out
    revealed = model.reveal(stego, key="passphrase")
    model.last_info                                      # codec, quality, payload bits per value, change rate

Array level: :meth:`DigitalMethod.hide_array` / :meth:`reveal_array` ((H, W, 3)
uint8), and :meth:`hide_bytes` / :meth:`reveal_bytes` for arbitrary bytes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from steg.digital import codec as codecs
from steg.digital.cipher import (
    MAC_BYTES, NONCE_BYTES, DigitalError, Header, decrypt_header, encrypt_header, open_sealed, seal, user_key,
)
from steg.digital.costs import hill
from steg.digital.embed import embed_spatial, payload_capacity, read_head, read_payload
from steg.digital.robust import capacity_bytes, embed_robust, read_robust_head, read_robust_payload
from steg.digital.stc import DEFAULT_HEIGHT
from steg.io import to_pil, to_tensor

__all__ = ["PROFILES", "Profile", "DigitalMethod", "DigitalError", "payload_summary"]

ROBUST_CHANNEL = 8


@dataclass(frozen=True)
class Profile:
    """What a profile may spend and which codecs it tries.

    Attributes:
        channel: 0 = +-1 STC (rate bits a value at most), 3 = up to 3 bits a value, 8 = JPEG-robust DCT.
        rate: largest payload of channel 0 in bits per cover value.
        codecs: codec ladder for :func:`steg.digital.codec.fit_codec`.
        aim: the profile's aim, in words (for ``describe``).
    """

    channel: int
    rate: float
    codecs: tuple[str, ...]
    aim: str


def _lossy() -> tuple[str, ...]:
    """Lossy codecs to try: AVIF (better at every rate measured here) where Pillow has it, then WebP."""
    return ("avif", "webp") if "avif" in codecs.available_codecs() else ("webp",)


PROFILES = {
    "default": Profile(0, 1.0, ("webp-lossless", *_lossy()), "lossless PNG channel, quality first: +-1 STC/HILL, "
                                                          "up to 1 bit a value"),
    "capacity": Profile(3, 3.0, ("webp-lossless", *_lossy()), "lossless PNG channel, most bits: up to 3 bits a value "
                                                           "(changes up to 4 levels)"),
    "stealth": Profile(0, 0.15, _lossy(), "hard to detect: +-1 STC/HILL at most 0.15 bit a value"),
    "robust": Profile(ROBUST_CHANNEL, 0.0, _lossy(), "survives JPEG at quality 90: DCT dither modulation with "
                                                      "Reed-Solomon"),
}


def payload_summary(infos: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means over hides of :attr:`DigitalMethod.last_info` entries: bits per value/pixel, change rate; the codecs."""
    n = max(len(infos), 1)
    mean = lambda k: sum(i[k] for i in infos) / n  # noqa: E731
    return {"bits_per_value": mean("bits_per_value"), "bits_per_pixel": mean("bits_per_pixel"),
            "change_rate": mean("change_rate"), "channel": infos[0]["channel"] if infos else None,
            "codecs": sorted({f"{i['codec']} {i['param']}" for i in infos}), "hides": len(infos)}


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, C) uint8 (what a PNG holds): :func:`steg.io.to_pil`'s rounding."""
    return np.asarray(to_pil(x))


def _to_float(a: np.ndarray) -> torch.Tensor:
    """(H, W, C) uint8 -> (C, H, W) float32 in [0, 1]: :func:`steg.io.to_tensor`."""
    return to_tensor(Image.fromarray(np.asarray(a, dtype=np.uint8)))


class _MethodAsNet:
    """What the analysis code reads from ``model.net``: keyed, arch_config, hide_with_key (batches of
    tensors) and the attack hooks of the keyed protocol (:class:`steg.nets.StegNet`)."""

    keyed = True
    size_multiple = 1

    def __init__(self, method: "DigitalMethod"):
        self.method = method
        self.arch_config = {"name": "digital", "channels": 3, "profile": method.profile_name}

    def hide_with_key(self, cover: torch.Tensor, secret: torch.Tensor, keys: Sequence[bytes] | None) -> torch.Tensor:
        """(B, 3, H, W) x2 and B keys (or None: no key) -> (B, 3, H, W) stego, as steganalysis training needs."""
        kept = len(self.method.last_info)  # the attackers' own hides are not the method's measured payload
        outs = [self.method.hide_tensor(cover[i : i + 1], secret[i : i + 1], key=None if keys is None else keys[i])
                for i in range(len(cover))]
        del self.method.last_info[kept:]
        return torch.cat(outs)

    def parameters(self):
        return iter(())

    def buffers(self):
        return iter(())

    def attacker_view(self, stego: torch.Tensor) -> torch.Tensor:
        """A learned thief sees the stego image itself: the method has no public structure to add."""
        return stego

    def known_secret_attack(self, stego: torch.Tensor, secret: torch.Tensor):
        """None: a fresh nonce per image gives every image its own key stream and positions, so one
        known (stego, secret) pair reads nothing of another image hidden with the same key."""
        return None


class DigitalMethod:
    """Compress, encrypt, embed: the digital hiding method (see :mod:`steg.digital`).

    Args:
        profile: "default", "capacity", "stealth" or "robust" (:data:`PROFILES`).
        codec: fix the codec ("webp", "webp-lossless", "avif"); None: the profile's ladder.
        quality: fix the lossy quality (0-100); None: the best that fits.
        rate: override the profile's largest payload in bits per value (channel 0 profiles).
        height: STC constraint height.
        on_damage: "error" (default): a stego image damaged beyond repair raises
            :class:`DigitalError` on reveal; "noise": it reveals noise (for measuring
            attacks, as ``steg eval --attack`` does).
    """

    channels = 3
    size_multiple = 1

    def __init__(self, profile: str = "default", codec: str | None = None, quality: int | None = None,
                 rate: float | None = None, height: int = DEFAULT_HEIGHT, on_damage: str = "error"):
        if on_damage not in ("error", "noise"):
            raise DigitalError(f"on_damage must be 'error' or 'noise', got {on_damage!r}")
        self.on_damage = on_damage
        if profile not in PROFILES:
            raise DigitalError(f"unknown digital profile {profile!r}; expected one of {', '.join(PROFILES)}")
        if codec is not None and codec not in codecs.available_codecs():
            raise DigitalError(f"codec {codec!r} is not available here; expected one of "
                               f"{', '.join(codecs.available_codecs())}")
        if quality is not None and not 0 <= int(quality) <= 100:
            raise DigitalError(f"quality must be in 0..100, got {quality}")
        self.profile_name = profile
        p = PROFILES[profile]
        self.profile = Profile(p.channel, p.rate if rate is None else float(rate),
                               p.codecs if codec is None else (codec,), p.aim)
        self.quality = quality
        self.height = int(height)
        self.info = {"source": f"digital/{profile}"}
        self.net = _MethodAsNet(self)
        self.last_info: list[dict[str, Any]] = []

    # -- description -----------------------------------------------------------------
    @property
    def source(self) -> str:
        return self.info["source"]

    def describe(self) -> str:
        """One line: the method, the profile and its aim."""
        fixed = f"; codec {self.profile.codecs[0]}" if len(self.profile.codecs) == 1 else ""
        fixed += f"; quality {self.quality}" if self.quality is not None else ""
        return f"digital (compress, encrypt, embed), profile {self.profile_name}: {self.profile.aim}{fixed}"

    def __repr__(self) -> str:
        return f"DigitalMethod({self.describe()})"

    # -- capacity ----------------------------------------------------------------------
    def capacity(self, shape: tuple[int, ...]) -> int:
        """Bytes of coded secret that a cover of ``shape`` (H, W, 3) holds in this profile (after the MAC)."""
        p = self.profile
        if p.channel == ROBUST_CHANNEL:
            total = capacity_bytes(shape)
        else:
            total = payload_capacity(int(np.prod(shape)), p.channel, p.rate) // 8
        return max(0, total - MAC_BYTES)

    def _overflow(self, shape: tuple[int, ...], need: int) -> DigitalError:
        have = self.capacity(shape)
        scale = math.sqrt((need + MAC_BYTES) / max(have + MAC_BYTES, 1)) * 1.05
        w, h = math.ceil(shape[1] * scale), math.ceil(shape[0] * scale)
        return DigitalError(
            f"the secret does not fit: even its smallest file takes {need} bytes, a {shape[1]}x{shape[0]} cover holds "
            f"{have} bytes in the {self.profile_name} profile; use a cover of at least about {w}x{h} pixels"
            + (" or --profile capacity" if self.profile_name in ("default", "stealth") else ""))

    # -- arrays ------------------------------------------------------------------------
    def _embed(self, cover: np.ndarray, key, header: Header, data: bytes, nonce: bytes | None) -> np.ndarray:
        k = user_key(key)
        nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
        enc = encrypt_header(k, nonce, header)
        sealed = seal(k, nonce, enc, data)
        if header.channel == ROBUST_CHANNEL:
            stego = embed_robust(cover, k, nonce, enc, sealed)
        else:
            stego = embed_spatial(cover, hill(cover), k, nonce, enc, sealed, header.channel, self.height)
        n = cover.size
        self.last_info.append({
            "profile": self.profile_name, "codec": codecs.CODECS[header.codec], "param": header.param,
            "coded_size": list(header.coded_size), "payload_bytes": len(sealed),
            "bits_per_value": 8 * len(sealed) / n, "bits_per_pixel": 8 * len(sealed) / (n // cover.shape[-1]),
            "change_rate": float(np.mean(stego != cover)),
            "channel": "robust DCT" if header.channel == ROBUST_CHANNEL else
                       ("+-1 STC" if header.channel == 0 else f"{header.channel} bits a value"),
        })
        return stego

    def _channel_for(self, cover: np.ndarray, nbytes: int) -> int:
        """The channel of this profile for a coded secret of ``nbytes`` (capacity: the fewest bits a value)."""
        p = self.profile
        if p.channel not in (1, 2, 3):
            return p.channel
        for b in range(1, p.channel + 1):
            if 8 * (nbytes + MAC_BYTES) <= payload_capacity(cover.size, b):
                return b
        return p.channel

    def _check_cover(self, cover: np.ndarray) -> np.ndarray:
        if cover.dtype != np.uint8 or cover.ndim != 3 or cover.shape[-1] != 3:
            raise DigitalError(f"cover: expected an (H, W, 3) uint8 image, got {cover.dtype} {cover.shape}")
        return cover

    def hide_array(self, cover: np.ndarray, secret: np.ndarray, key: Any = None, nonce: bytes | None = None) -> np.ndarray:
        """Hide ``secret`` (h, w, 3) uint8 (any size) in ``cover`` (H, W, 3) uint8: the stego image (H, W, 3) uint8.

        Raises:
            DigitalError: one line when the secret does not fit even at the lowest setting.
        """
        cover = self._check_cover(cover)
        budget = self.capacity(cover.shape)
        try:
            enc = codecs.fit_codec(secret, budget, self.profile.codecs, quality=self.quality)
        except codecs.CodecError as exc:
            if exc.smallest is None:
                raise DigitalError(str(exc)) from None
            raise self._overflow(cover.shape, exc.smallest) from None
        header = Header(enc.codec, enc.param, self._channel_for(cover, len(enc.data)),
                        (secret.shape[1], secret.shape[0]), enc.coded_size, len(enc.data))
        return self._embed(cover, key, header, enc.data, nonce)

    def hide_bytes(self, cover: np.ndarray, data: bytes, key: Any = None, nonce: bytes | None = None) -> np.ndarray:
        """Hide arbitrary ``data`` (no source coding) in ``cover`` (H, W, 3) uint8: the stego image."""
        cover = self._check_cover(cover)
        if len(data) > self.capacity(cover.shape):
            raise DigitalError(f"{len(data)} bytes do not fit: a {cover.shape[1]}x{cover.shape[0]} cover holds "
                               f"{self.capacity(cover.shape)} bytes in the {self.profile_name} profile")
        header = Header(0, 0, self._channel_for(cover, len(data)), (0, 0), (0, 0), len(data))
        return self._embed(cover, key, header, bytes(data), nonce)

    def _open(self, stego: np.ndarray, key: Any) -> tuple[Header, bytes] | None:
        """(header, payload) for this key, None when the key finds nothing; DigitalError when damaged."""
        stego = self._check_cover(stego)
        k = user_key(key)
        if self.profile.channel == ROBUST_CHANNEL:
            head = read_robust_head(stego, k)
            if head is None:
                return None
        else:
            head = read_head(stego, k, self.height)
        nonce, enc = head
        header = decrypt_header(k, nonce, enc)
        if header is None:
            return None
        nbytes = header.length + MAC_BYTES
        if header.channel == ROBUST_CHANNEL:
            sealed = read_robust_payload(stego, k, nonce, nbytes)
        else:
            sealed = read_payload(stego, k, nonce, nbytes, header.channel, self.height)
        return header, open_sealed(k, nonce, enc, sealed)

    def reveal_bytes(self, stego: np.ndarray, key: Any = None) -> bytes | None:
        """The bytes hidden by :meth:`hide_bytes`, or None when this key finds nothing (wrong key, nothing hidden).

        Raises:
            DigitalError: one line when the key matches but the payload was changed.
        """
        found = self._open(stego, key)
        return None if found is None else found[1]

    def reveal_array(self, stego: np.ndarray, key: Any = None) -> np.ndarray:
        """The secret (h, w, 3) uint8 at its original size; noise of the stego's size when the key finds nothing.

        Raises:
            DigitalError: one line when the key matches but the stego image was changed.
        """
        found = self._open(stego, key)
        if found is None or found[0].codec == 0:
            return np.frombuffer(os.urandom(stego.size), dtype=np.uint8).reshape(stego.shape).copy()
        header, data = found
        try:
            return codecs.decode(data, header.codec, header.param, header.size)
        except codecs.CodecError as exc:
            raise DigitalError(str(exc)) from None

    # -- tensors (StegModel's API) --------------------------------------------------------
    def hide_tensor(self, cover: torch.Tensor, secret: torch.Tensor, key: Any = None,
                    nonce: bytes | None = None) -> torch.Tensor:
        """(B, 3, H, W) cover and (B, 3, h, w) secret in [0, 1] -> (B, 3, H, W) 8-bit stego (float32)."""
        if secret.shape[0] != cover.shape[0]:
            secret = secret.expand(cover.shape[0], -1, -1, -1)
        outs = [_to_float(self.hide_array(_to_uint8(c), _to_uint8(s), key=key, nonce=nonce))
                for c, s in zip(cover, secret)]
        return torch.stack(outs)

    def reveal_tensor(self, stego: torch.Tensor, key: Any = None) -> torch.Tensor:
        """(B, 3, H, W) stego -> (B, 3, h, w) revealed secrets (noise of the stego's size for a wrong key)."""
        outs = [_to_float(self._reveal_or_noise(_to_uint8(s), key)) for s in stego]
        if any(o.shape != outs[0].shape for o in outs):  # secrets of different sizes: give them the stego's size
            outs = [torch.nn.functional.interpolate(o[None], size=stego.shape[-2:], mode="bilinear")[0] for o in outs]
        return torch.stack(outs)

    def _reveal_or_noise(self, stego: np.ndarray, key: Any) -> np.ndarray:
        try:
            return self.reveal_array(stego, key=key)
        except DigitalError:
            if self.on_damage == "error":
                raise
            return np.frombuffer(os.urandom(stego.size), dtype=np.uint8).reshape(stego.shape).copy()

    def hide(self, cover, secret, fit: str = "resize", quantize: bool = True, key: Any = None):
        """Hide ``secret`` in ``cover`` (PIL images, paths or tensors, as :meth:`StegModel.hide`).

        The secret keeps its own size (it is compressed, not fitted to the cover);
        ``fit`` and ``quantize`` are accepted for compatibility (results are always 8-bit).
        """
        from steg.inference.images import ImageBatch

        c = ImageBatch(cover, self.channels, "cover")
        s = ImageBatch(secret, self.channels, "secret")
        if s.tensor.shape[0] not in (1, c.tensor.shape[0]):
            raise ValueError(f"secret batch size {s.tensor.shape[0]} does not match the cover's {c.tensor.shape[0]}")
        return c.give_back(self.hide_tensor(c.tensor, s.tensor, key=key))

    def reveal(self, stego, sharpen: bool = False, quantize: bool = True, key: Any = None):
        """The hidden secret at its original size (PIL image for PIL/path input, else a tensor).

        A wrong key (or none, for an image hidden with one) gives noise, never an error;
        ``sharpen`` applies :func:`steg.inference.images.sharpen_image`.
        """
        from steg.inference.images import ImageBatch, sharpen_image

        s = ImageBatch(stego, self.channels, "stego")
        out = self.reveal_tensor(s.tensor, key=key)
        if sharpen:
            out = sharpen_image(out)
        return s.give_back(out)
