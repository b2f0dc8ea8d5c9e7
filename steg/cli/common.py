"""What every ``steg`` command shares: one-line errors, output checks, model options, writing PNGs."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Sequence

PROG = "steg"
DEFAULT_MODEL = "default"  # == steg.inference.files.DEFAULT_MODEL (kept here so --help needs no torch)
DIGITAL = "digital"  # == steg.inference.model.DIGITAL
DIGITAL_PROFILES = ("default", "capacity", "stealth", "robust")  # == steg.digital.PROFILES
LOSSY_REASON = "lossy compression destroys the hidden image"


class CLIError(Exception):
    """A user-facing error: printed as one line ``steg: error: <message>``."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors in the ``steg: error: ...`` format."""

    def error(self, message: str):  # type: ignore[override]
        raise CLIError(" ".join(message.split()) + f" (see '{self.prog} --help')")


def same_file(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path: Path, inputs: Sequence[Path], force: bool, suffix: str | None = ".png",
                 what: str = "output", reason: str = "") -> Path:
    """Refuse, before any work: an output of the wrong kind, an input (even with --force), a folder,
    an existing file without --force, or a place that cannot be written."""
    if suffix is not None and path.suffix.lower() != suffix:
        got = f"'{path.suffix}'" if path.suffix else "no file extension"
        raise CLIError(f"{what} {path}: {got} is not {suffix}; {reason}")
    for source in inputs:
        if same_file(path, Path(source)):
            raise CLIError(f"{what} {path} is the input file {source}; refusing to overwrite an input "
                           "(choose another name)")
    if path.is_dir():
        raise CLIError(f"{what} {path} is a folder; expected a file name")
    if path.exists() and not force:
        raise CLIError(f"{what} {path} already exists; pass --force to overwrite it")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise CLIError(f"{what} {path}: {parent} is not a folder")
    try:  # the one sure test of "can I write there" (permissions, read-only file systems)
        with tempfile.TemporaryFile(dir=parent, prefix=f".{path.name}."):
            pass
    except OSError as exc:
        raise CLIError(f"{what} {path} cannot be written ({exc.strerror or exc} in {parent})") from None
    return path


def png_reason(kind: str) -> str:
    if kind == "stego image":
        return (f"the stego image is always written as lossless PNG ({LOSSY_REASON}: JPEG, WebP, GIF and "
                "the like must not be used); give an output name ending in .png")
    return f"the {kind} is always written as lossless PNG; give an output name ending in .png"


def write_output(path: Path, write) -> None:
    """Run ``write()`` (which writes ``path`` atomically); an OSError names ``path``, not a temporary file."""
    try:
        write()
    except FileExistsError:
        raise CLIError(f"output {path} appeared while this command ran (another process wrote it); it is kept "
                       "as it is: pass --force to overwrite it") from None
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None


def add_model_options(p: argparse.ArgumentParser, default: str = DEFAULT_MODEL) -> None:
    """--model (``default``: what the command uses without it), --profile, --device, --tile, --allow-arch."""
    what = ("the digital method (compress, encrypt, embed: the best for a lossless PNG)" if default == DIGITAL
            else "the shipped qim net")
    p.add_argument("--model", "-m", default=default, metavar="M",
                   help=f"{DIGITAL} (the digital method), a training checkpoint (.ckpt), an exported model "
                        f"(.safetensors) or a shipped model name (steg/pretrained/NAME.safetensors: default, learned, robust); "
                        f"default: {default}, {what}")
    p.add_argument("--profile", choices=DIGITAL_PROFILES, default=None,
                   help="with --model digital: default (lossless PNG, quality first), capacity, stealth or robust "
                        "(survives JPEG 90); see docs/digital.md")
    p.add_argument("--device", default="cpu", help="device the nets run on (cpu, cuda, cuda:1, ...); default: cpu")
    p.add_argument("--tile", type=tile_arg, default="auto", metavar="N",
                   help="process large images in overlapping N x N tiles to bound memory; auto (default): sized "
                        "for under 1 GB of activations per tile; 0: never tile")
    add_allow_arch_option(p)


def add_allow_arch_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-arch", action="append", default=[], metavar="TARGET",
                   help="let the model file rebuild your own architecture, e.g. mypkg.mynet.MyNet (repeatable; "
                        "a model file naming any other non-built-in class is refused before its module is imported)")


def allow_arch(args: argparse.Namespace) -> None:
    """Allow the architectures the user named with --allow-arch (see :mod:`steg.nets.registry`)."""
    if getattr(args, "allow_arch", None):
        from steg.nets import allow_target

        allow_target(*args.allow_arch)


def tile_arg(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number of pixels, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number of pixels >= 0, got {text!r}")
    return value


def load_model(args: argparse.Namespace):
    """The model the command's --model/--device/--tile name (a :class:`steg.inference.model.StegModel`).

    ``--model digital [--profile P]``: the digital method (:class:`steg.digital.DigitalMethod`).
    """
    import torch

    from steg.inference.model import load_model as load

    profile = getattr(args, "profile", None)
    if args.model == DIGITAL or args.model.startswith(DIGITAL + ":"):  # digital:PROFILE = --profile PROFILE
        if ":" in args.model:
            named = args.model.split(":", 1)[1]
            if profile is not None and profile != named:
                raise CLIError(f"--model {args.model} and --profile {profile} disagree; give one of them")
            profile = named
        # eval and analyze measure: a damaged stego image (an attack) reveals noise there, not an error
        measuring = getattr(args, "command", None) in ("eval", "analyze")
        return load(DIGITAL, profile=profile or "default", on_damage="noise" if measuring else "error")
    if profile is not None:
        raise CLIError(f"--profile applies to --model {DIGITAL} only (got --model {args.model})")
    allow_arch(args)
    try:
        device = torch.device(args.device)
    except (RuntimeError, ValueError) as exc:
        raise CLIError(f"--device {args.device!r} is not a device name (expected cpu, cuda, cuda:N, mps)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"--device {args.device}: CUDA is not available on this machine; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise CLIError(f"--device {args.device}: MPS is not available on this machine; use --device cpu")
    return load(args.model, device=device, tile=args.tile or None)


def add_key_options(p: argparse.ArgumentParser) -> None:
    """``--key PASSPHRASE`` / ``--key-file FILE`` (mutually exclusive): see docs/security.md."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--key", metavar="PASSPHRASE",
                       help="secret key (qim, or a model trained with model.keyed=true): only the same key "
                            "reveals; stretched with scrypt")
    group.add_argument("--key-file", metavar="FILE",
                       help="read the key from FILE (a passphrase or random bytes; one trailing newline ignored)")


def key_arg(args: argparse.Namespace):
    """The derived key of --key / --key-file (a :class:`steg.security.keys.DerivedKey`), or None."""
    if getattr(args, "key_file", None):
        from steg.security.keys import StegKeyError, read_key_file

        try:
            return read_key_file(args.key_file)
        except StegKeyError as exc:
            raise CLIError(f"--key-file: {exc}") from None
    if getattr(args, "key", None) is not None:
        from steg.security.keys import StegKeyError, derive_key

        try:
            return derive_key(args.key)
        except StegKeyError as exc:
            raise CLIError(f"--key: {exc}") from None
    return None


def check_keyed(model, key) -> None:
    """Refuse a key (one line) for a model whose architecture has no keyed mode."""
    if key is not None and not getattr(model.net, "keyed", False):
        raise CLIError(f"--key: model {model.source} ({model.net.arch_config.get('name')}) has no keyed mode; "
                       "only qim models and models trained with model.keyed=true take a key")
