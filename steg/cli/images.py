"""``steg hide``, ``steg reveal`` and ``steg samples``: images in, lossless PNG out. No Lightning, no Hydra."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from steg.cli.common import (
    CLIError, add_key_options, add_model_options, check_keyed, check_output, key_arg, load_model, png_reason,
    write_output,
)

#: The warning of ``steg hide`` without a key.
NO_KEY_WARNING = "no --key: anyone with the model can reveal the secret"

#: PNG text chunk ``steg hide`` writes into a stego image: its size, so ``steg reveal`` can tell an edit.
STEGO_TAG = "steg-stego"
_LOSSY_FORMATS = {"JPEG", "WEBP", "GIF", "MPO", "JPEG2000"}


def cmd_hide(args: argparse.Namespace) -> int:
    from PIL.PngImagePlugin import PngInfo

    from steg.io import load_image, save_image

    cover_path, secret_path, out = Path(args.cover), Path(args.secret), Path(args.output)
    check_output(out, [cover_path, secret_path], args.force, reason=png_reason("stego image"))
    for path, what in ((cover_path, "cover"), (secret_path, "secret")):
        if not path.exists():
            raise CLIError(f"{what} image {path} not found")
    cover, secret = load_image(cover_path, None), load_image(secret_path, None)  # modes kept: hide converts
    key = key_arg(args)
    model = load_model(args)
    check_keyed(model, key)
    stego = model.hide(cover, secret, fit=args.fit, key=key)
    info = PngInfo()
    info.add_text(STEGO_TAG, f"{stego.size[0]}x{stego.size[1]}")
    write_output(out, lambda: save_image(stego, out, format="PNG", pnginfo=info))
    # After the write, so that an error stays the only line on stderr; only where a key was possible.
    if key is None and getattr(model.net, "keyed", False):
        warnings.warn(NO_KEY_WARNING, UserWarning, stacklevel=1)
    print(f"hid {secret_path} ({secret.size[0]}x{secret.size[1]}) in {cover_path} -> {out} "
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
        found.append(f"{path} is {size[0]}x{size[1]}, not on the model's {size_multiple}-pixel grid, and carries "
                     "no steg hide tag: if it was resized or cropped the revealed image is noise")
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
    stego = load_image(stego_path, model.channels)
    for line in stego_warnings(stego_path, model.size_multiple):
        if getattr(model, "profile_name", None) == "robust" and "lossy" in line:
            continue  # the digital method's robust profile is made for JPEG
        warnings.warn(line, UserWarning, stacklevel=1)
    revealed = model.reveal(stego, sharpen=args.sharpen, key=key)
    write_output(out, lambda: save_image(revealed, out, format="PNG"))
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
        write_output(target, lambda: save_image(image, target, format="PNG"))
    print(f"wrote {len(targets)} held-out photos to {out_dir}: {', '.join(p.name for p in targets)}")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("hide", help="hide SECRET in COVER, write the stego PNG",
                       description="Hide SECRET in COVER; the stego image has the cover's size and is saved as PNG.")
    p.add_argument("cover", metavar="COVER", help="cover image (any size)")
    p.add_argument("secret", metavar="SECRET", help="secret image (fitted to the cover's size)")
    p.add_argument("-o", "--output", required=True, metavar="STEGO.png", help="output stego image (.png only)")
    add_model_options(p)
    p.add_argument("--fit", choices=("resize", "crop"), default="resize",
                   help="fit the secret to the cover: resize (default) or scale to cover and centre-crop")
    p.add_argument("--force", "-f", action="store_true", help="overwrite an existing output")
    add_key_options(p)
    p.set_defaults(func=cmd_hide)

    p = sub.add_parser("reveal", help="recover the secret from a stego image",
                       description="Recover the secret image from a stego PNG written by 'steg hide'.")
    p.add_argument("stego", metavar="STEGO", help="stego image (lossless, as written by steg hide)")
    p.add_argument("-o", "--output", required=True, metavar="SECRET.png", help="output revealed image (.png only)")
    add_model_options(p)
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
