"""``steg hide``, ``steg reveal`` and ``steg samples``: images in, lossless PNG out. No Lightning, no Hydra."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from steg.cli.common import (
    DIGITAL, CLIError, add_key_options, add_model_options, check_keyed, check_output, key_arg, load_model, png_reason,
    write_output,
)

#: The warning of ``steg hide`` without a key.
NO_KEY_WARNING = "no --key: anyone with the model can reveal the secret"

#: PNG text chunk (the stego image's size) that older versions of ``steg hide`` wrote; still read, never
#: written: a stego image carries nothing that marks it (its chunks are those of any PNG Pillow writes).
STEGO_TAG = "steg-stego"
_LOSSY_FORMATS = {"JPEG", "WEBP", "GIF", "MPO", "JPEG2000"}
#: Largest image (pixels) steg hide / steg reveal take: peak memory grows with the image, about 70 bytes a
#: pixel with the shipped model (1.3 GB at 4096x4096, 2.5 GB at 6000x6000, measured), so about 1.7 GB here.
MAX_PIXELS = 6000 * 4000
#: Smallest cover side steg hide takes: the secret is fitted to the cover, so a smaller one keeps next to nothing.
MIN_COVER_SIDE = 16
#: steg hide warns when fitting shrinks the secret by more than this factor on a side (most of it is lost).
SHRINK_WARNING = 4


def fit_description(secret_size: tuple[int, int], cover_size: tuple[int, int], fit: str) -> tuple[str, str | None]:
    """How ``steg hide`` fits the secret to the cover, in words, and a one-line warning if it loses most of it."""
    (sw, sh), (cw, ch) = secret_size, cover_size
    if (sw, sh) == (cw, ch):
        how = "kept at its size"
    elif fit == "crop":
        how = f"scaled to cover {cw}x{ch} and centre-cropped (aspect ratio kept)"
    else:
        how = f"resized to {cw}x{ch}" + ("" if abs(sw * ch - sh * cw) <= max(sw, sh, cw, ch) else
                                         " (aspect ratio not kept; --fit crop keeps it)")
    shrink = max(sw / cw, sh / ch) if fit == "resize" else min(sw / cw, sh / ch)
    warning = None
    if shrink > SHRINK_WARNING:
        warning = (f"the secret ({sw}x{sh}) is shrunk {shrink:.0f}x to fit the {cw}x{ch} cover: most of its detail "
                   "is lost (use a larger cover)")
    return how, warning


def cmd_hide(args: argparse.Namespace) -> int:
    from steg.io import load_image, save_image

    cover_path, secret_path, out = Path(args.cover), Path(args.secret), Path(args.output)
    check_output(out, [cover_path, secret_path], args.force, reason=png_reason("stego image"))
    for path, what in ((cover_path, "cover"), (secret_path, "secret")):
        if not path.exists():
            raise CLIError(f"{what} image {path} not found")
    # modes kept: hide converts; the size is checked from the header, before decoding
    cover, secret = (load_image(p, None, max_pixels=MAX_PIXELS) for p in (cover_path, secret_path))
    if min(cover.size) < MIN_COVER_SIDE:
        raise CLIError(f"cover image {cover_path} is {cover.size[0]}x{cover.size[1]}: too small to hold a secret "
                       f"(the secret is fitted to the cover; at least {MIN_COVER_SIDE} pixels a side)")
    how, shrunk = fit_description(secret.size, cover.size, args.fit)
    key = key_arg(args)
    model = load_model(args)
    check_keyed(model, key)
    stego = model.hide(cover, secret, fit=args.fit, key=key)
    # no tag: nothing marks a stego image
    write_output(out, lambda: save_image(stego, out, exclusive=not args.force, format="PNG"))
    # After the write, so that an error stays the only line on stderr; only where a key was possible.
    if key is None and getattr(model.net, "keyed", False):
        warnings.warn(NO_KEY_WARNING, UserWarning, stacklevel=1)
    if shrunk:
        warnings.warn(shrunk, UserWarning, stacklevel=1)
    print(f"hid {secret_path} ({secret.size[0]}x{secret.size[1]}, {how}) in {cover_path} -> {out} "
          f"({stego.size[0]}x{stego.size[1]} {stego.mode} PNG)")
    return 0


def stego_warnings(path: Path, size_multiple: int) -> list[str]:
    """Why ``path`` may not be a stego image as ``steg hide`` wrote it (lossy format, edited size), one line each."""
    from PIL import Image

    with Image.open(path) as img:
        fmt, size, tag = img.format, img.size, img.info.get(STEGO_TAG)
    found = []
    if fmt in _LOSSY_FORMATS:
        found.append(f"{path} is a {fmt} file: lossy compression destroys the hidden image, so the revealed "
                     "image is likely noise (reveal the PNG that steg hide wrote)")
    elif tag is not None and tag != f"{size[0]}x{size[1]}":
        found.append(f"{path} is {size[0]}x{size[1]} but steg hide wrote it as {tag}: a resized or cropped "
                     "stego image reveals noise")
    elif tag is None and (size[0] % size_multiple or size[1] % size_multiple):
        found.append(f"{path} is {size[0]}x{size[1]}, not on the model's {size_multiple}-pixel grid: if it was "
                     "resized or cropped the revealed image is noise")
    return found


def cmd_reveal(args: argparse.Namespace) -> int:
    from steg.io import load_image, save_image

    stego_path, out = Path(args.stego), Path(args.output)
    check_output(out, [stego_path], args.force, reason=png_reason("revealed image"))
    if not stego_path.exists():
        raise CLIError(f"stego image {stego_path} not found")
    key = key_arg(args)
    model = load_model(args)
    check_keyed(model, key)
    stego = load_image(stego_path, model.channels, max_pixels=MAX_PIXELS)
    for line in stego_warnings(stego_path, model.size_multiple):
        if getattr(model, "profile_name", None) == "robust" and "lossy" in line:
            continue  # the digital method's robust profile is made for JPEG
        warnings.warn(line, UserWarning, stacklevel=1)
    revealed = model.reveal(stego, sharpen=args.sharpen, key=key)
    write_output(out, lambda: save_image(revealed, out, exclusive=not args.force, format="PNG"))
    extra = ", sharpened" if args.sharpen else ""
    print(f"revealed {stego_path} -> {out} ({revealed.size[0]}x{revealed.size[1]} {revealed.mode} PNG{extra})")
    return 0


def cmd_samples(args: argparse.Namespace) -> int:
    """Copy the embedded held-out photographs (never trained on) into a folder as PNG."""
    from steg.data import sample_photo_paths
    from steg.io import load_image, save_image

    out_dir = Path(args.directory)
    if out_dir.exists() and not out_dir.is_dir():
        raise CLIError(f"{out_dir} exists and is not a folder")
    sources = sample_photo_paths("val")
    targets = [out_dir / f"{path.stem}.png" for path in sources]
    for source, target in zip(sources, targets):  # refuse before writing anything
        check_output(target, [source], args.force)
    for source, target in zip(sources, targets):
        image = load_image(source, 3)
        write_output(target, lambda: save_image(image, target, exclusive=not args.force, format="PNG"))
    print(f"wrote {len(targets)} held-out photos to {out_dir}: {', '.join(p.name for p in targets)}")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("hide", help="hide SECRET in COVER, write the stego PNG",
                       description="Hide SECRET in COVER; the stego image has the cover's size and is saved as PNG.")
    p.add_argument("cover", metavar="COVER", help="cover image (any size)")
    p.add_argument("secret", metavar="SECRET", help="secret image (fitted to the cover's size)")
    p.add_argument("-o", "--output", required=True, metavar="STEGO.png", help="output stego image (.png only)")
    add_model_options(p, default=DIGITAL)
    p.add_argument("--fit", choices=("resize", "crop"), default="resize",
                   help="fit the secret to the cover: resize (default) or scale to cover and centre-crop")
    p.add_argument("--force", "-f", action="store_true", help="overwrite an existing output")
    add_key_options(p)
    p.set_defaults(func=cmd_hide)

    p = sub.add_parser("reveal", help="recover the secret from a stego image",
                       description="Recover the secret image from a stego PNG written by 'steg hide'.")
    p.add_argument("stego", metavar="STEGO", help="stego image (lossless, as written by steg hide)")
    p.add_argument("-o", "--output", required=True, metavar="SECRET.png", help="output revealed image (.png only)")
    add_model_options(p, default=DIGITAL)
    p.add_argument("--sharpen", action="store_true",
                   help="sharpen with smoothing: unsharp mask (5x5, sigma 1.0) on the revealed image")
    p.add_argument("--force", "-f", action="store_true", help="overwrite an existing output")
    add_key_options(p)
    p.set_defaults(func=cmd_reveal)

    p = sub.add_parser("samples", help="copy the embedded held-out photos into a folder, to try hide/reveal/eval",
                       description="Write the embedded sample's held-out photographs (never used in training: "
                                   "coffee, rocket, chelsea, grace_hopper) as PNG files into DIR.")
    p.add_argument("directory", metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--force", "-f", action="store_true", help="overwrite existing files")
    p.set_defaults(func=cmd_samples)
