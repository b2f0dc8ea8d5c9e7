"""``steg web``: serve the browser page (:mod:`steg.browser.page`) on http://HOST:PORT/."""

from __future__ import annotations

import argparse

from steg.cli.common import CLIError


def cmd_web(args: argparse.Namespace) -> int:
    """Build what the page lacks (web/vendor, web/models), then serve web/ until Ctrl-C."""
    from steg.browser.page import WebError, serve

    try:
        serve(host=args.host, port=args.port)
    except WebError as exc:
        raise CLIError(str(exc)) from exc
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("web", help="serve the browser page (hide and reveal client-side) on http://HOST:PORT/",
                       description="Serve web/ (the page that hides and reveals in the browser with the exported "
                                   "ONNX models; images never leave the browser) with Python's http.server. "
                                   "Builds web/vendor (onnxruntime-web, from npm) and web/models first if missing.")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.set_defaults(func=cmd_web)
