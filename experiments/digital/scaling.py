"""Stealth profile when the cover is larger than the secret: a 128x128 secret in 512x512 held-out photos.

Usage (from the repository root): python experiments/digital/scaling.py
Prints, per payload rate (bits per cover value), the mean revealed PSNR, the payload actually used and the
change rate over the 4 held-out photos (image i hides image i+1), 8-bit.
"""

from __future__ import annotations

import statistics

import numpy as np
from PIL import Image

from steg.data.photos import sample_photo_paths
from steg.digital import DigitalMethod
from steg.digital.codec import psnr8
from steg.io import load_image, square_image


def main() -> None:
    photos = [load_image(p, 3) for p in sample_photo_paths("val")]
    covers = [np.asarray(square_image(p, 512)) for p in photos]
    secrets = [np.asarray(square_image(p, 128)) for p in photos]
    print("| rate (max bits/value) | payload bits/value | change rate | stego PSNR | revealed PSNR (min / mean) |")
    print("|---|---|---|---|---|")
    for rate in (0.15, 0.05, 0.02, 0.01):
        method = DigitalMethod("stealth", rate=rate)
        rev, stego_db = [], []
        for i in range(4):
            stego = method.hide_array(covers[i], secrets[(i + 1) % 4], key="scaling")
            rev.append(psnr8(method.reveal_array(stego, key="scaling"), secrets[(i + 1) % 4]))
            stego_db.append(psnr8(stego, covers[i]))
        info = method.last_info
        print(f"| {rate} | {statistics.fmean(x['bits_per_value'] for x in info):.4f} | "
              f"{statistics.fmean(x['change_rate'] for x in info):.4f} | {statistics.fmean(stego_db):.1f} dB | "
              f"{min(rev):.1f} / {statistics.fmean(rev):.1f} dB |", flush=True)


if __name__ == "__main__":
    main()
