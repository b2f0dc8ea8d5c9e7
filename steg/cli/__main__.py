"""``python -m steg.cli``: the ``steg`` command line."""

from steg.cli import main

raise SystemExit(main())
