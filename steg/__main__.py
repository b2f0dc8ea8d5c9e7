"""``python -m steg``: the ``steg`` command line (see :mod:`steg.cli`)."""

from steg.cli import main

raise SystemExit(main())
