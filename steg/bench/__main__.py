"""``python -m steg.bench`` (what ``make bench`` runs)."""

import sys

from steg.bench.cli import main

sys.exit(main())
