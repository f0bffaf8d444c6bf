"""``python -m fastgrad bench|demo``: see :mod:`fastgrad.cli`."""
import sys

from fastgrad.cli import main

sys.exit(main())
