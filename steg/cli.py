"""The ``steg`` command line: hide, reveal, eval, export, compare, samples, web.

    steg hide COVER SECRET -o STEGO.png [--model M] [--fit resize|crop] [--force]
    steg reveal STEGO -o SECRET.png [--model M] [--sharpen] [--force]
    steg eval [--model M] --covers DIR [--secrets DIR] [--size N] [--json FILE] [--out DIR]
    steg export CKPT -o MODEL.safetensors [--force]
    steg export MODEL -o NAME.onnx [--force]         (NAME.hide.onnx + NAME.reveal.onnx)
    steg web [--port 8000] [--host 127.0.0.1]
    steg compare DIR... [--out DIR] [--metric val/loss] [--by best|final] [--force]
    steg samples DIR [--force]

``--model``: a training checkpoint (.ckpt), an exported model (.safetensors) or
the name of a shipped model (``steg/pretrained/NAME.safetensors``); default
``default``. Every error is one line on stderr, ``steg: error: ...``, exit
status 2 (1 for an unexpected internal error); outputs are written through a
temporary file and a rename, so a failed run leaves no partial output.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

PROG = "steg"
EXIT_ERROR = 2
EXIT_INTERNAL = 1
DEFAULT_MODEL = "default"  # == steg.inference.DEFAULT_MODEL (kept here so --help needs no torch)
LOSSY_REASON = "lossy compression destroys the hidden image"
GRID_NAME = "eval_grid.png"
HISTOGRAM_NAME = "eval_error_histograms.png"
GRID_ROWS = 4
GRID_TILE = 128


class CLIError(Exception):
    """A user-facing error: printed as one line ``steg: error: <message>``."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors in the ``steg: error: ...`` format."""

    def error(self, message: str):  # type: ignore[override]
        hint = f" (see '{self.prog} --help')"
        raise CLIError(" ".join(message.split()) + hint)


# --------------------------------------------------------------------------- #
# Output checks
# --------------------------------------------------------------------------- #


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_output(
    path: Path,
    inputs: Sequence[Path],
    force: bool,
    suffix: str | None = ".png",
    what: str = "output",
    reason: str = "",
) -> Path:
    """Refuse an output of the wrong kind, one that is an input, or an existing one without --force."""
    if suffix is not None and path.suffix.lower() != suffix:
        got = f"'{path.suffix}'" if path.suffix else "no file extension"
        raise CLIError(f"{what} {path}: {got} is not {suffix}; {reason}")
    for source in inputs:
        if _same_file(path, source):
            raise CLIError(f"{what} {path} is the input file {source}; refusing to overwrite an input (choose another name)")
    if path.is_dir():
        raise CLIError(f"{what} {path} is a folder; expected a file name")
    if path.exists() and not force:
        raise CLIError(f"{what} {path} already exists; pass --force to overwrite it")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise CLIError(f"{what} {path}: {parent} is not a folder")
    return path


def _png_reason(kind: str) -> str:
    if kind == "stego image":
        return (
            f"the stego image is always written as lossless PNG ({LOSSY_REASON}: JPEG, WebP, GIF and "
            "the like must not be used); give an output name ending in .png"
        )
    return f"the {kind} is always written as lossless PNG; give an output name ending in .png"


def _save_png(img, path: Path) -> None:
    from steg.inference import write_atomic

    write_atomic(path, lambda tmp: img.save(tmp, format="PNG"))


# --------------------------------------------------------------------------- #
# Commands
# --------------------------------------------------------------------------- #


def _load_model(args: argparse.Namespace):
    import torch

    from steg.inference import load_model

    try:
        device = torch.device(args.device)
    except (RuntimeError, ValueError) as exc:
        raise CLIError(f"--device {args.device!r} is not a device name (expected cpu, cuda, cuda:N, mps)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"--device {args.device}: CUDA is not available on this machine; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise CLIError(f"--device {args.device}: MPS is not available on this machine; use --device cpu")
    return load_model(args.model, device=device, tile=args.tile or None)


def cmd_hide(args: argparse.Namespace) -> int:
    cover_path, secret_path, out = Path(args.cover), Path(args.secret), Path(args.output)
    _check_output(out, [cover_path, secret_path], args.force, reason=_png_reason("stego image"))
    for path, what in ((cover_path, "cover"), (secret_path, "secret")):
        if not path.exists():
            raise CLIError(f"{what} image {path} not found")
    from steg.io import load_image

    model = _load_model(args)
    cover = load_image(cover_path, model.channels)
    secret = load_image(secret_path, model.channels)
    stego = model.hide(cover, secret, fit=args.fit)
    _save_png(stego, out)
    print(f"hid {secret_path} ({secret.size[0]}x{secret.size[1]}) in {cover_path} -> {out} "
          f"({stego.size[0]}x{stego.size[1]} {stego.mode} PNG)")
    return 0


def cmd_reveal(args: argparse.Namespace) -> int:
    stego_path, out = Path(args.stego), Path(args.output)
    _check_output(out, [stego_path], args.force, reason=_png_reason("revealed image"))
    if not stego_path.exists():
        raise CLIError(f"stego image {stego_path} not found")
    from steg.io import load_image

    model = _load_model(args)
    stego = load_image(stego_path, model.channels)
    revealed = model.reveal(stego, sharpen=args.sharpen)
    _save_png(revealed, out)
    extra = ", sharpened" if args.sharpen else ""
    print(f"revealed {stego_path} -> {out} ({revealed.size[0]}x{revealed.size[1]} {revealed.mode} PNG{extra})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from steg.inference import export_checkpoint, load_model

    if args.onnx or Path(args.output).suffix.lower() == ".onnx":
        return cmd_export_onnx(args)
    ckpt, out = Path(args.checkpoint), Path(args.output)
    _check_output(
        out, [ckpt], args.force, suffix=".safetensors", what="output",
        reason="an exported model is a .safetensors file; give an output name ending in .safetensors",
    )
    if not ckpt.exists():
        raise CLIError(f"checkpoint {ckpt} not found (expected a training checkpoint .ckpt written by train.py)")
    export_checkpoint(ckpt, out, force=args.force)
    model = load_model(out)  # check that the file loads back
    print(f"exported {ckpt} -> {out}: {model.describe()}")
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    """``steg export MODEL -o NAME.onnx``: the hide and reveal graphs (see steg.onnx)."""
    from steg.onnx import OnnxError, export_onnx, onnx_paths

    try:
        import onnx  # noqa: F401
    except ImportError as exc:
        raise CLIError("ONNX export needs the 'onnx' package: pip install -e '.[onnx]'") from exc
    try:
        paths = onnx_paths(args.output)
        for path in paths.values():
            _check_output(path, [Path(args.checkpoint)], args.force, suffix=".onnx", what="output")
        paths = export_onnx(args.checkpoint, args.output, force=args.force)
    except OnnxError as exc:
        raise CLIError(str(exc)) from exc
    from steg.onnx import OPSET

    print(f"exported {args.checkpoint} -> {paths['hide']} and {paths['reveal']} (ONNX opset {OPSET}, "
          "uint8 (N, C, H, W) in and out, dynamic N, H, W)")
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    """``steg web``: build what the page lacks (web/vendor, web/models), then serve web/ until Ctrl-C."""
    from steg.web import WebError, serve

    try:
        serve(host=args.host, port=args.port)
    except WebError as exc:
        raise CLIError(str(exc)) from exc
    return 0


def _add_web_parser(sub) -> None:
    p = sub.add_parser("web", help="serve the browser page (hide and reveal client-side) on http://HOST:PORT/",
                       description="Serve web/ (the page that hides and reveals in the browser with the exported "
                                   "ONNX models; images never leave the browser) with Python's http.server. "
                                   "Builds web/vendor (onnxruntime-web, from npm) and web/models first if missing.")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.set_defaults(func=cmd_web)


# --- samples ---------------------------------------------------------------- #


def cmd_samples(args: argparse.Namespace) -> int:
    """Copy the embedded held-out photographs (never trained on) into a folder as PNG."""
    from steg.data import sample_photo_paths
    from steg.io import load_image

    out_dir = Path(args.directory)
    if out_dir.exists() and not out_dir.is_dir():
        raise CLIError(f"{out_dir} exists and is not a folder")
    sources = sample_photo_paths("val")
    targets = [out_dir / f"{path.stem}.png" for path in sources]
    for source, target in zip(sources, targets):  # refuse before writing anything
        _check_output(target, [source], args.force)
    out_dir.mkdir(parents=True, exist_ok=True)
    for source, target in zip(sources, targets):
        _save_png(load_image(source, 3), target)
    written = targets
    print(f"wrote {len(written)} held-out photos to {out_dir}: {', '.join(p.name for p in written)}")
    return 0


# --- eval ------------------------------------------------------------------- #


def _pairs(covers_dir: Path, secrets_dir: Path | None) -> list[tuple[Path, Path]]:
    from steg.io import IMAGE_EXTENSIONS, find_images

    def images(folder: Path, option: str) -> list[Path]:
        if not folder.exists():
            raise CLIError(f"{option} {folder} not found (expected a folder of images)")
        if not folder.is_dir():
            raise CLIError(f"{option} {folder} is not a folder (expected a folder of images)")
        found = find_images(folder)
        if not found:
            raise CLIError(f"{option} {folder} holds no images ({'/'.join(IMAGE_EXTENSIONS)}, searched recursively)")
        return found

    covers = images(covers_dir, "--covers")
    if secrets_dir is None:
        if len(covers) < 2:
            raise CLIError(
                f"--covers {covers_dir} holds {len(covers)} image; at least 2 are needed "
                "(image i hides image i+1), or give --secrets DIR"
            )
        return [(covers[i], covers[(i + 1) % len(covers)]) for i in range(len(covers))]
    secrets = images(secrets_dir, "--secrets")
    return list(zip(covers, secrets))


def _finite(x: float) -> float | None:
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


def _stats(values: list[float]) -> tuple[float, float]:
    import statistics

    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return float("nan"), float("nan")
    return statistics.fmean(vals), statistics.median(vals)


def _thumbnail(x):
    """(C, H, W) kept as is up to 2 * GRID_TILE a side, else resized to GRID_TILE x GRID_TILE (bounded memory)."""
    import torch.nn.functional as F

    if max(x.shape[-2:]) <= 2 * GRID_TILE:
        return x.clone()
    return F.interpolate(x[None], size=(GRID_TILE, GRID_TILE), mode="area")[0]


def _grid_tiles(rows: list[dict[str, Any]]):
    """Stack the first rows' images into (B, 3, h, w) batches, resized to a common tile if needed."""
    import torch
    import torch.nn.functional as F

    sizes = {tuple(r["cover"].shape[-2:]) for r in rows}
    if len(sizes) == 1 and max(next(iter(sizes))) <= 2 * GRID_TILE:
        size = next(iter(sizes))
    else:
        size = (GRID_TILE, GRID_TILE)

    def stack(key: str) -> torch.Tensor:
        out = []
        for r in rows:
            x = r[key].unsqueeze(0)
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            if tuple(x.shape[-2:]) != size:
                x = F.interpolate(x, size=size, mode="area")
            out.append(x)
        return torch.cat(out).clamp(0, 1)

    return {k: stack(k) for k in ("cover", "secret", "stego", "revealed")}


def cmd_eval(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from steg.io import ImageError, load_image, to_tensor
    from steg.inference import fit_image, square_image
    from steg.metrics import pair_metrics, quantize

    if args.size is not None and args.size < 1:
        raise CLIError(f"--size must be a positive number of pixels, got {args.size}")
    if args.limit is not None and args.limit < 1:
        raise CLIError(f"--limit must be >= 1, got {args.limit}")
    covers_dir = Path(args.covers)
    secrets_dir = Path(args.secrets) if args.secrets else None
    json_path = Path(args.json) if args.json else None
    out_dir = Path(args.out) if args.out else None
    if json_path is not None:
        _check_output(json_path, [], args.force, suffix=None, what="--json")
    if out_dir is not None:
        if out_dir.exists() and not out_dir.is_dir():
            raise CLIError(f"--out {out_dir} exists and is not a folder")
        for name in (GRID_NAME, HISTOGRAM_NAME):
            _check_output(out_dir / name, [], args.force, what="--out file", reason="")

    pairs = _pairs(covers_dir, secrets_dir)
    if args.limit is not None:
        pairs = pairs[: args.limit]
    model = _load_model(args)
    channels = model.channels

    metrics = {"stego": pair_metrics("", ""), "secret": pair_metrics("", "")}
    counts = {name: torch.zeros(256, dtype=torch.long) for name in ("stego vs cover", "revealed vs secret")}
    rows: list[dict[str, Any]] = []
    grid_rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    bar = tqdm(pairs, desc="eval", unit="pair", disable=None if len(pairs) > 4 else True, file=sys.stderr)
    for cover_path, secret_path in bar:
        try:
            cover = load_image(cover_path, channels)
            secret = load_image(secret_path, channels)
        except ImageError as exc:
            skipped.append(str(exc))
            print(f"{PROG}: warning: skipping pair ({cover_path.name}, {secret_path.name}): {exc}", file=sys.stderr)
            continue
        if args.size is not None:
            cover, secret = square_image(cover, args.size), square_image(secret, args.size)
        else:
            secret = fit_image(secret, cover.size, args.fit)
        c, s = to_tensor(cover).unsqueeze(0), to_tensor(secret).unsqueeze(0)
        stego = quantize(model.hide_tensor(c, s))  # exactly what `steg hide` saves
        revealed = quantize(model.reveal_tensor(stego))  # the reveal net sees the saved stego image
        row: dict[str, Any] = {"cover": str(cover_path), "secret": str(secret_path),
                               "width": cover.size[0], "height": cover.size[1]}
        for pair, (pred, target) in (("stego", (stego, c)), ("secret", (revealed, s))):
            collection = metrics[pair]
            collection.reset()
            collection.update(pred, target)
            for name, value in collection.compute().items():
                row[f"{name}_{pair}"] = float(value)
        counts["stego vs cover"] += torch.bincount(((stego - c).abs() * 255).round().long().flatten(), minlength=256)
        counts["revealed vs secret"] += torch.bincount(((revealed - s).abs() * 255).round().long().flatten(), minlength=256)
        rows.append(row)
        if out_dir is not None and len(grid_rows) < GRID_ROWS:
            grid_rows.append({k: _thumbnail(v[0]) for k, v in
                              (("cover", c), ("secret", s), ("stego", stego), ("revealed", revealed))})
    bar.close()
    if not rows:
        raise CLIError(f"no pair could be evaluated: all {len(pairs)} pairs had unreadable images (first: {skipped[0]})")

    keys = [f"{m}_{p}" for p in ("stego", "secret") for m in ("psnr", "ssim", "apd")]
    summary: dict[str, Any] = {}
    for key in keys:
        mean, median = _stats([r[key] for r in rows])
        summary[key], summary[f"{key}_median"] = mean, median

    size_text = f"{args.size}x{args.size} (centre crop)" if args.size else f"cover size (secret fitted by {args.fit})"
    print(f"model: {model.describe()}")
    print(f"pairs: {len(rows)} ({'one folder, image i hides image i+1' if secrets_dir is None else 'two folders'}), "
          f"evaluated at {size_text}; stego and revealed quantized to 8 bits")
    print(_table(summary))
    if skipped:
        print(f"skipped {len(skipped)} pair(s) with unreadable images")

    if out_dir is not None:
        from steg.plots import comparison_grid, plot_error_histograms

        grid = comparison_grid(**_grid_tiles(grid_rows), max_rows=GRID_ROWS)
        _save_png(grid, out_dir / GRID_NAME)
        plot_error_histograms(counts, out_dir / HISTOGRAM_NAME, title=f"pixel errors over {len(rows)} pairs (8-bit)")
        print(f"wrote {out_dir / GRID_NAME} and {out_dir / HISTOGRAM_NAME}")

    if json_path is not None:
        report = {
            "n": len(rows),
            **{k: _finite(v) for k, v in summary.items()},
            "model": model.describe(),
            "model_source": model.source,
            "arch_config": model.net.arch_config,
            "covers": str(covers_dir),
            "secrets": str(secrets_dir) if secrets_dir else None,
            "pairing": "one folder: image i hides image i+1" if secrets_dir is None else "two folders: zipped",
            "size": args.size,
            "fit": None if args.size else args.fit,
            "quantized": True,
            "skipped": skipped,
            "images": [{k: (_finite(v) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
        }
        from steg.inference import write_atomic

        text = json.dumps(report, indent=2, allow_nan=False)
        write_atomic(json_path, lambda tmp: Path(tmp).write_text(text + "\n"))
        print(f"wrote {json_path}")
    return 0


def _table(summary: dict[str, Any]) -> str:
    lines = [f"{'':22s}{'metric':10s}{'mean':>10s}{'':3s}{'median':>9s}"]
    labels = {"stego": "stego vs cover", "secret": "revealed vs secret"}
    units = {"psnr": ("PSNR", " dB", 2), "ssim": ("SSIM", "", 4), "apd": ("APD 0-255", "", 2)}
    for pair, label in labels.items():
        for i, metric in enumerate(("psnr", "ssim", "apd")):
            name, unit, digits = units[metric]
            mean, median = summary[f"{metric}_{pair}"], summary[f"{metric}_{pair}_median"]
            lines.append(
                f"{label if i == 0 else '':22s}{name:10s}{mean:>10.{digits}f}{unit:3s}{median:>9.{digits}f}{unit}"
            )
    return "\n".join(lines)


# --- compare ---------------------------------------------------------------- #


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare finished runs (run folders, or sweep folders searched recursively) from their saved files."""
    from steg.compare import CompareError, compare

    try:
        result = compare(args.directories, out=args.out, metric=args.metric, by=args.by, force=args.force)
    except CompareError as exc:
        raise CLIError(str(exc)) from None
    for warning in result.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    print(result.table)
    print()
    print(result.sentence)
    print(f"wrote {', '.join(str(p) for p in result.outputs.values())}")
    return 0


# --------------------------------------------------------------------------- #
# Parser and entry point
# --------------------------------------------------------------------------- #


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", "-m", default=DEFAULT_MODEL, metavar="M",
        help="training checkpoint (.ckpt), exported model (.safetensors) or shipped model name "
             f"(steg/pretrained/NAME.safetensors); default: {DEFAULT_MODEL}",
    )
    p.add_argument("--device", default="cpu", help="device the nets run on (cpu, cuda, cuda:1, ...); default: cpu")
    p.add_argument(
        "--tile", type=_tile_arg, default="auto", metavar="N",
        help="process large images in overlapping N x N tiles to bound memory; auto (default): sized for "
             "under 1 GB of activations per tile; 0: never tile",
    )


def _tile_arg(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number of pixels, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number of pixels >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Deep-learning image steganography: hide a secret image in a cover image, reveal it back.",
        epilog="Stego images must stay lossless PNG: lossy compression destroys the hidden image.",
    )
    from steg import __version__

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("hide", help="hide SECRET in COVER, write the stego PNG",
                       description="Hide SECRET in COVER; the stego image has the cover's size and is saved as PNG.")
    p.add_argument("cover", metavar="COVER", help="cover image (any size)")
    p.add_argument("secret", metavar="SECRET", help="secret image (fitted to the cover's size)")
    p.add_argument("-o", "--output", required=True, metavar="STEGO.png", help="output stego image (.png only)")
    _add_model_options(p)
    p.add_argument("--fit", choices=("resize", "crop"), default="resize",
                   help="fit the secret to the cover: resize (default) or scale to cover and centre-crop")
    p.add_argument("--force", "-f", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=cmd_hide)

    p = sub.add_parser("reveal", help="recover the secret from a stego image",
                       description="Recover the secret image from a stego PNG written by 'steg hide'.")
    p.add_argument("stego", metavar="STEGO", help="stego image (lossless, as written by steg hide)")
    p.add_argument("-o", "--output", required=True, metavar="SECRET.png", help="output revealed image (.png only)")
    _add_model_options(p)
    p.add_argument("--sharpen", action="store_true",
                   help="sharpen with smoothing: unsharp mask (5x5, sigma 1.0) on the revealed image")
    p.add_argument("--force", "-f", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=cmd_reveal)

    p = sub.add_parser("eval", help="measure a model on folders of images",
                       description="Hide and reveal image pairs from folders; report PSNR, SSIM and mean absolute "
                                   "pixel error (0-255) of stego vs cover and revealed vs secret, both 8-bit.")
    _add_model_options(p)
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
    p.add_argument("--force", "-f", action="store_true", help="overwrite existing --json / --out files")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("samples", help="copy the embedded held-out photos into a folder, to try hide/reveal/eval",
                       description="Write the embedded sample's held-out photographs (never used in training: "
                                   "coffee, rocket, chelsea, grace_hopper) as PNG files into DIR.")
    p.add_argument("directory", metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--force", "-f", action="store_true", help="overwrite existing files")
    p.set_defaults(func=cmd_samples)

    p = sub.add_parser("compare", help="compare training runs or a sweep: table, curves, HTML report",
                       description="Compare finished training runs from their folders (metrics.json, config.yaml, "
                                   "csv/metrics.csv, images/), offline: a table ranked by --metric (winner first), "
                                   "compare.md, compare.csv, compare_curves.png (validation curves on shared axes) "
                                   "and a self-contained compare.html with every run's last image grid.")
    p.add_argument("directories", nargs="+", metavar="DIR",
                   help="run folders, or sweep folders (runs/sweep_<time>) searched recursively for run folders")
    p.add_argument("--out", metavar="DIR",
                   help="output folder (default: the first DIR if it is a sweep folder, else ./compare)")
    p.add_argument("--metric", default="val/loss", metavar="NAME",
                   help="validation metric that ranks the runs (default: val/loss; e.g. val/psnr_secret); "
                        "psnr_*/ssim_* are maximised, anything else minimised")
    p.add_argument("--by", choices=("best", "final"), default="best",
                   help="rank by the metric's best value over the validation epochs (default) or its final value")
    p.add_argument("--force", "-f", action="store_true", help="overwrite existing compare.* outputs")
    p.set_defaults(func=cmd_compare)

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
    p.add_argument("--onnx", action="store_true",
                   help="export ONNX graphs (the output must be named NAME.onnx)")
    p.add_argument("--force", "-f", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=cmd_export)
    _add_web_parser(sub)
    return parser


def _error(message: str) -> None:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that are the user's to fix (one-line message, exit 2).

    steg.io and steg.inference are looked up only if already imported: an
    error of theirs cannot have happened otherwise, and ``steg --help`` or a
    refused output name need not import torch.
    """
    from PIL import Image

    types: list[type[BaseException]] = [CLIError, Image.DecompressionBombError, Image.DecompressionBombWarning]
    data = sys.modules.get("steg.io")
    if data is not None:
        types.append(data.ImageError)
    inference = sys.modules.get("steg.inference")
    if inference is not None:
        types.append(inference.ModelError)
    return tuple(types)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 error, 1 internal error)."""
    from PIL import Image

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_ERROR
        with warnings.catch_warnings():
            # a decompression bomb is an error, whoever opens the image
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return int(args.func(args) or 0)
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_ERROR)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except MemoryError:
        _error("out of memory; try a smaller --tile")
        return EXIT_ERROR
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        _error(f"{exc.strerror or exc}{where}")
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - never a traceback
        if isinstance(exc, _user_error_types()):
            if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
                _error(f"image too large (decompression bomb guard): {exc}")
            else:
                _error(str(exc))
            return EXIT_ERROR
        _error(f"unexpected {type(exc).__name__}: {exc}")
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
