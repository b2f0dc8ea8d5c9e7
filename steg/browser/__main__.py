"""``python -m steg.browser build|serve|bench|screenshot``: the page's own commands (``make web``, ``make bench-web``).

Here, above both :mod:`steg.browser.page` and :mod:`steg.browser.chromium`, so that neither imports the other's caller.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from steg.browser.chromium import bench, screenshot
from steg.browser.page import WEB_DIR, WebError, build, serve


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m steg.browser", description="Build, serve or benchmark the web page.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="vendor onnxruntime-web and export the shipped models into web/")
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    p = sub.add_parser("serve", help="serve web/ (builds what is missing first)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p = sub.add_parser("bench", help="load and hide+reveal times in headless Chromium, as JSON")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--json", metavar="FILE", help="also write the JSON there")
    p = sub.add_parser("screenshot", help="a screenshot of the page after a hide and reveal (PNG)")
    p.add_argument("output", metavar="OUT.png")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            built = build(force=args.force)
            print(f"web/: {', '.join(built) + ' built' if built else 'up to date'} ({WEB_DIR})")
        elif args.command == "screenshot":
            print(f"wrote {screenshot(Path(args.output))}")
        elif args.command == "serve":
            serve(host=args.host, port=args.port)
        else:
            result = bench(runs=args.runs, size=args.size)
            text = json.dumps(result, indent=2)
            print(text)
            if args.json:
                from steg.io import write_text

                write_text(args.json, text + "\n")
    except WebError as exc:
        print(f"steg web: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
