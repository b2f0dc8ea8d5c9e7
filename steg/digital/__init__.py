"""The digital hiding method: compress the secret, encrypt it with the key, embed its bits.

Every other method in steg is *analog* (secret pixel values written into cover
pixel values). This one is the classical pipeline, with one testable function
per stage (as in ``conseal``):

1. **Source coding** (:mod:`steg.digital.codec`): the secret becomes an image file
   (lossless WebP, near-lossless WebP of ``v // s``, AVIF where Pillow has it,
   lossy WebP), the best-looking one (PSNR) that fits the channel's capacity:
   binary search of the quality, smaller copies when the full size does not fit.
   The revealed image is the decoded file, at the secret's original size.
2. **Container and encryption** (:mod:`steg.digital.cipher`): a fresh 12-byte
   nonce per image (``os.urandom``); ``image_key(K, nonce)`` (SHAKE-256 of the
   scrypt-derived key ``K``) encrypts a 32-byte header (version, codec, quality,
   channel, sizes, payload length, and a keyed check of ``K``) and the payload by
   XOR with its key stream; a BLAKE2b MAC seals header and payload. No key: a
   fixed public key (anyone can reveal, like an unkeyed model).
3. **Costs** (:mod:`steg.digital.costs`): HILL per channel; +1 at 255 and -1 at 0 cost infinity.
4. **Coding** (:mod:`steg.digital.stc`): syndrome-trellis codes (h = 7) put the
   payload into the least significant bits with the fewest and cheapest changes.
5. **Embedding** (:mod:`steg.digital.embed` for PNG, :mod:`steg.digital.robust` for
   JPEG): key-selected positions; see those modules for the exact layout.

File format (what a stego PNG holds, in key-selected values; nothing visible):

* head: nonce (12 bytes) + encrypted header (32 bytes), 3 copies through a
  fixed-size STC segment (robust profile: Reed-Solomon protected DCT slots);
* payload: encrypted coded secret + 16-byte MAC, by +-1 STC over all remaining
  values (default, stealth), b = 1..3 bits a value (capacity), or Reed-Solomon
  codewords in DCT slots (robust).

Reveal: a wrong key, no key for a keyed image, or an image with nothing hidden
fails the header's key check and gives noise of the image's size (never an
error); the right key on a damaged image fails the MAC (or the Reed-Solomon
decoder) and raises :class:`DigitalError` with one line.

Profiles (:data:`PROFILES`): ``default`` (lossless PNG, quality first: +-1 STC,
up to 1 bit a value), ``capacity`` (up to 3 bits a value), ``stealth`` (+-1 STC
at most 0.15 bit a value), ``robust`` (survives JPEG at quality 90). Measured
figures: ``experiments/digital/README.md``; user guide: ``docs/digital.md``.
"""

from steg.digital.cipher import DigitalError
from steg.digital.method import PROFILES, DigitalMethod

__all__ = ["DigitalMethod", "DigitalError", "PROFILES"]
