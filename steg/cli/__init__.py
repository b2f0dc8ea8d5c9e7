"""The ``steg`` command line: hide, reveal, eval, export, compare, samples, web, analyze.

    steg hide COVER SECRET -o STEGO.png [--model M] [--fit resize|crop] [--key K | --key-file F] [--force]
    steg reveal STEGO -o SECRET.png [--model M] [--sharpen] [--key K | --key-file F] [--force]
    steg eval [--model M] --covers DIR [--secrets DIR] [--size N] [--json FILE] [--out DIR] [--attack SPECS]
              [--key K | --key-file F]
    steg export CKPT -o MODEL.safetensors [--force]
    steg export MODEL -o NAME.onnx [--force]         (NAME.hide.onnx + NAME.reveal.onnx)
    steg compare DIR... [--out DIR] [--floor DB] [--metric NAME] [--by best|final] [--force]
    steg web [--port 8000] [--host 127.0.0.1]
    steg samples DIR [--force]
    steg analyze --out DIR [--images DIR] [--model M] [--key K | --key-file F] [--thief-steps N]

``--key PASSPHRASE`` / ``--key-file FILE`` (hide, reveal, eval, analyze): only
the same key reveals the secret (qim models, and any model trained with
``model.keyed=true``; see docs/security.md). Without a key anyone with the model
can; a wrong key gives noise, not an error.

One module per group of commands (:mod:`steg.cli.images`: hide, reveal, samples;
:mod:`steg.cli.evaluation`: eval, export; :mod:`steg.cli.report`: compare;
:mod:`steg.cli.web`: web; :mod:`steg.cli.analyze`: analyze), each a
thin handler over the library (:mod:`steg.inference.model`, :mod:`steg.inference.evaluation`,
:mod:`steg.inference.files`). ``--model``: a training checkpoint (.ckpt), an exported
model (.safetensors) or the name of a shipped model; default ``default``;
``--model digital --profile default|capacity|stealth|robust`` is the digital
method (:mod:`steg.digital`: compress, encrypt, embed). Every
error is one line on stderr, ``steg: error: ...``, exit status 2 (1 for an
unexpected internal error); warnings are one line, ``steg: warning: ...``.
Outputs are checked (kind, not an input, writable) before any work and written
atomically, so a failed run leaves no partial output. ``hide`` and ``reveal``
import neither Lightning nor Hydra.
"""

from __future__ import annotations

import sys
import warnings
from typing import Sequence

from steg.cli.common import PROG, CLIError, Parser
from steg.cli.evaluation import GRID_NAME, HISTOGRAM_NAME

__all__ = ["main", "build_parser", "CLIError", "GRID_NAME", "HISTOGRAM_NAME", "PROG"]

EXIT_ERROR = 2
EXIT_INTERNAL = 1


def build_parser() -> Parser:
    from steg import __version__
    from steg.cli import analyze, evaluation, images, report, web

    parser = Parser(
        prog=PROG,
        description="Deep-learning image steganography: hide a secret image in a cover image, reveal it back.",
        epilog="Stego images must stay lossless PNG: lossy compression destroys the hidden image.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    images.add_parsers(sub)
    evaluation.add_parsers(sub)
    report.add_parsers(sub)
    web.add_parsers(sub)
    analyze.add_parsers(sub)
    return parser


# steg.io.one_line's text, written out here: importing steg.io (and torch) to print a usage error
# would cost a second or more.
def _error(message: str) -> None:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)


def _warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that are the user's to fix (one-line message, exit 2).

    Library modules are looked up only if already imported: an error of theirs
    cannot have happened otherwise, and ``steg --help`` need not import torch.
    """
    from PIL import Image

    types: list[type[BaseException]] = [CLIError, Image.DecompressionBombError, Image.DecompressionBombWarning]
    for module, name in (("steg.io", "ImageError"), ("steg.inference.files", "ModelError"), ("steg.inference.evaluation", "EvalError"),
                         ("steg.distortions.attacks", "AttackError"), ("steg.digital.cipher", "DigitalError")):
        if module in sys.modules:
            types.append(getattr(sys.modules[module], name))
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
            warnings.showwarning = _warning  # restored on exit
            warnings.simplefilter("default")
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
