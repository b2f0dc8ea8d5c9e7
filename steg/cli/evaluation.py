"""``steg eval`` (a thin handler over :func:`steg.inference.evaluation.evaluate`) and ``steg export``."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

from steg.cli.common import (
    DIGITAL, CLIError, add_allow_arch_option, add_key_options, add_model_options, allow_arch, check_keyed,
    check_output, key_arg, load_model, write_output,
)

GRID_NAME = "eval_grid.png"
HISTOGRAM_NAME = "eval_error_histograms.png"
ATTACK_GRID_NAME = "eval_attacks.png"
GRID_ROWS = 4
#: Warning of ``steg export -o NAME.onnx`` for a model trained with ``model.keyed=true``.
KEYED_ONNX_WARNING = ("the model is keyed but the ONNX graphs hold only its net: they hide and reveal without "
                      "a key (the key's scrambling runs in steg.security.scramble, outside the graphs; docs/security.md)")


def _grid_tiles(thumbnails: list[dict[str, Any]]):
    """Stack the thumbnails into (B, 3, h, w) batches, resized to a common tile if needed."""
    import torch
    import torch.nn.functional as F

    from steg.inference.evaluation import GRID_TILE

    sizes = {tuple(r["cover"].shape[-2:]) for r in thumbnails}
    size = next(iter(sizes)) if len(sizes) == 1 and max(next(iter(sizes))) <= 2 * GRID_TILE else (GRID_TILE, GRID_TILE)

    def stack(key: str) -> torch.Tensor:
        out = []
        for r in thumbnails:
            x = r[key].unsqueeze(0).expand(-1, 3, -1, -1) if r[key].shape[0] == 1 else r[key].unsqueeze(0)
            out.append(x if tuple(x.shape[-2:]) == size else F.interpolate(x, size=size, mode="area"))
        return torch.cat(out).clamp(0, 1)

    return {k: stack(k) for k in ("cover", "secret", "stego", "revealed")}


def _parse_attack_option(text: str | None):
    """--attack SPECS -> a list of steg.distortions.attacks.Attack (None without the option); one-line error when malformed."""
    if text is None:
        return None
    from steg.distortions.attacks import AttackError, parse_attacks

    try:
        return parse_attacks(text)
    except AttackError as exc:
        raise CLIError(f"--attack: {exc}") from None


def cmd_eval(args: argparse.Namespace) -> int:
    from steg.inference.evaluation import EvalError, evaluate, folder_pairs, table
    from steg.io import json_safe, write_text
    from steg.metrics import PSNR_AVERAGE

    if args.size is not None and args.size < 1:
        raise CLIError(f"--size must be a positive number of pixels, got {args.size}")
    if args.limit is not None and args.limit < 1:
        raise CLIError(f"--limit must be >= 1, got {args.limit}")
    attacks = _parse_attack_option(args.attack)  # before anything slow: a bad spec fails at once
    left_out: list[str] = []  # unreadable images left out before pairing
    try:
        pairs = folder_pairs(args.covers, args.secrets, skipped=left_out)
    except EvalError as exc:
        raise CLIError(str(exc)) from None
    if args.limit is not None:
        pairs = pairs[: args.limit]
    inputs = sorted({p for pair in pairs for p in pair})
    json_path = Path(args.json) if args.json else None
    out_dir = Path(args.out) if args.out else None
    if json_path is not None:
        check_output(json_path, inputs, args.force, suffix=None, what="--json")
    if out_dir is not None:
        if out_dir.exists() and not out_dir.is_dir():
            raise CLIError(f"--out {out_dir} exists and is not a folder")
        for name in (GRID_NAME, HISTOGRAM_NAME) + ((ATTACK_GRID_NAME,) if attacks else ()):
            check_output(out_dir / name, inputs, args.force, what="--out file", reason="")

    key = key_arg(args)
    model = load_model(args)
    check_keyed(model, key)
    result = evaluate(model, pairs, size=args.size, fit=args.fit,
                      thumbnails=GRID_ROWS if out_dir is not None else 0, progress=len(pairs) > 4,
                      attacks=attacks, key=key)
    one_folder = args.secrets is None
    size_text = f"{args.size}x{args.size} (centre crop)" if args.size else f"cover size (secret fitted by {args.fit})"
    print(f"model: {model.describe()}")
    print(f"pairs: {result.n} ({'one folder, image i hides image i+1' if one_folder else 'two folders'}), "
          f"evaluated at {size_text}; stego and revealed quantized to 8 bits")
    print(table(result.summary))
    print("95% CI: of the mean over these images (Student's t); a difference within it is a tie")
    if getattr(model, "last_info", None):  # the digital method: what the channel carried
        print(digital_summary(model.last_info))
    if attacks:
        from steg.distortions.attacks import attack_table

        print("\nrevealed secret under real distortions (Pillow codecs; 8-bit; mean over pairs):")
        print(attack_table(result.attack_summary))
    result.skipped[:0] = left_out
    if result.skipped:
        print(f"skipped {len(left_out)} unreadable image(s) and {len(result.skipped) - len(left_out)} pair(s)"
              if left_out else f"skipped {len(result.skipped)} pair(s)")

    if out_dir is not None:
        from steg.io import save_image
        from steg.report.plots import comparison_grid, plot_error_histograms

        grid = comparison_grid(**_grid_tiles(result.thumbnails), max_rows=GRID_ROWS)
        write_output(out_dir / GRID_NAME, lambda: save_image(grid, out_dir / GRID_NAME, format="PNG"))
        write_output(out_dir / HISTOGRAM_NAME, lambda: plot_error_histograms(
            result.counts, out_dir / HISTOGRAM_NAME, title=f"pixel errors over {result.n} pairs (8-bit)"))
        print(f"wrote {out_dir / GRID_NAME} and {out_dir / HISTOGRAM_NAME}")
        if result.attack_images:
            from steg.distortions.attacks import attack_grid

            attack_img = attack_grid(result.attack_images)
            write_output(out_dir / ATTACK_GRID_NAME,
                         lambda: save_image(attack_img, out_dir / ATTACK_GRID_NAME, format="PNG"))
            print(f"wrote {out_dir / ATTACK_GRID_NAME}")

    if json_path is not None:
        report = {
            "n": result.n,
            **result.summary,
            "model": model.describe(),
            "model_source": model.source,
            "arch_config": model.net.arch_config,
            **({"digital": model.last_info} if getattr(model, "last_info", None) else {}),
            "covers": str(args.covers),
            "secrets": args.secrets,
            "pairing": "one folder: image i hides image i+1" if one_folder else "two folders: zipped",
            "size": args.size,
            "fit": None if args.size else args.fit,
            "quantized": True,
            "psnr_average": PSNR_AVERAGE,
            "keyed": key is not None,
            "skipped": result.skipped,
            "images": result.rows,
        }
        if attacks:
            report["attacks"] = result.attack_summary
            report["attack_images"] = result.attack_rows
        text = json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n"
        write_output(json_path, lambda: write_text(json_path, text, exclusive=not args.force))
        print(f"wrote {json_path}")
    return 0


def digital_summary(infos: list[dict]) -> str:
    """One line: mean payload (bits per value and per pixel), change rate and the codecs the digital method used."""
    from steg.digital.method import payload_summary

    p = payload_summary(infos)
    return (f"digital payload: {p['bits_per_value']:.3f} bits per value ({p['bits_per_pixel']:.3f} per pixel), "
            f"change rate {p['change_rate']:.3f}, {p['channel']}; codecs: {', '.join(p['codecs'])}")


def cmd_export(args: argparse.Namespace) -> int:
    from steg.inference.model import load_model as load
    from steg.inference.files import export_checkpoint

    if args.checkpoint == DIGITAL:
        raise CLIError(f"{DIGITAL} is Python only: it is a hiding method, not a net, so there is no model file "
                       f"or ONNX graph to export (use steg hide/reveal --model {DIGITAL})")
    allow_arch(args)
    if args.onnx or Path(args.output).suffix.lower() == ".onnx":
        return cmd_export_onnx(args)
    ckpt, out = Path(args.checkpoint), Path(args.output)
    check_output(out, [ckpt], args.force, suffix=".safetensors", what="output",
                 reason="an exported model is a .safetensors file; give an output name ending in .safetensors")
    if not ckpt.exists():
        raise CLIError(f"checkpoint {ckpt} not found (expected a training checkpoint .ckpt written by train.py)")
    write_output(out, lambda: export_checkpoint(ckpt, out, force=args.force))
    model = load(out)  # check that the file loads back
    print(f"exported {ckpt} -> {out}: {model.describe()}")
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    """``steg export MODEL -o NAME.onnx``: the hide and reveal graphs (see :mod:`steg.browser.onnx`)."""
    from steg.browser.onnx import OPSET, OnnxError, export_onnx, onnx_paths, read_metadata

    try:
        import onnx  # noqa: F401
    except ImportError as exc:
        raise CLIError("ONNX export needs the 'onnx' package: pip install -e '.[onnx]'") from exc
    try:
        paths = onnx_paths(args.output)
        for path in paths.values():
            check_output(path, [Path(args.checkpoint)], args.force, suffix=".onnx", what="output")
        paths = export_onnx(args.checkpoint, args.output, force=args.force)
    except OnnxError as exc:
        raise CLIError(str(exc)) from exc
    print(f"exported {args.checkpoint} -> {paths['hide']} and {paths['reveal']} (ONNX opset {OPSET}, "
          "uint8 (N, C, H, W) in and out, dynamic N, H, W: any H, W >= the net's size multiple, padded inside)")
    if json.loads(read_metadata(paths["hide"])["arch_config"]).get("keyed"):
        warnings.warn(KEYED_ONNX_WARNING, UserWarning, stacklevel=1)
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("eval", help="measure a model on folders of images",
                       description="Hide and reveal image pairs from folders; report PSNR, SSIM and mean absolute "
                                   "pixel error (0-255) of stego vs cover and revealed vs secret, both 8-bit.")
    add_model_options(p)
    p.add_argument("--covers", required=True, metavar="DIR",
                   help="folder of cover images (searched recursively, sorted by name)")
    p.add_argument("--secrets", metavar="DIR",
                   help="folder of secret images, zipped with the covers in sorted order (to the shorter); "
                        "default: the covers folder, image i hiding image i+1")
    p.add_argument("--size", type=int, metavar="N",
                   help="resize (shorter side) and centre-crop every image to N x N; default: evaluate at the "
                        "cover's size with the secret resized to it")
    p.add_argument("--fit", choices=("resize", "crop"), default="resize",
                   help="without --size: how the secret is fitted to the cover (default: resize)")
    p.add_argument("--limit", type=int, metavar="K", help="evaluate only the first K pairs")
    p.add_argument("--json", metavar="FILE", help="write the report (means, medians, per-image rows) as JSON")
    p.add_argument("--out", metavar="DIR",
                   help=f"write {GRID_NAME} (first pairs) and {HISTOGRAM_NAME} (pixel errors) there")
    p.add_argument("--attack", metavar="SPECS",
                   help="also reveal from stego images distorted by real codecs and report each: comma-separated "
                        "jpeg:Q, webp:Q, noise:SIGMA (levels), resize:SCALE, blur:RADIUS, crop:FRACTION, e.g. "
                        "jpeg:90,jpeg:75,webp:80,noise:2,resize:0.5,blur:1,crop:0.9 (table, JSON 'attacks', "
                        f"--out/{ATTACK_GRID_NAME})")
    p.add_argument("--force", "-f", action="store_true",
                   help="overwrite existing --json / --out files (never an input image)")
    add_key_options(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("export", help="training checkpoint -> standalone .safetensors model, or any model -> ONNX",
                       description="Write a training checkpoint's nets as one .safetensors file (weights plus the "
                                   "architecture config as metadata) that loads without Lightning or Hydra; or, "
                                   "with an output NAME.onnx (or --onnx), write any model's hide and reveal graphs "
                                   "as NAME.hide.onnx and NAME.reveal.onnx (opset 17, uint8 images, dynamic size).")
    p.add_argument("checkpoint", metavar="CKPT",
                   help="Lightning checkpoint written by train.py; for ONNX also an exported .safetensors "
                        "model or a shipped model name")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.safetensors",
                   help="output model file (.safetensors, or NAME.onnx for ONNX)")
    p.add_argument("--onnx", action="store_true", help="export ONNX graphs (the output must be named NAME.onnx)")
    add_allow_arch_option(p)
    p.add_argument("--force", "-f", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=cmd_export)
