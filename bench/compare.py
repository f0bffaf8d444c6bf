"""Compare two ``python -m fastgrad bench --json`` runs (see :mod:`fastgrad.benchmarks.compare`).

    python bench/compare.py OLD.json NEW.json --threshold 0.10

Exits 1 when a workload's speed-up over the NumPy reference fell by more than the threshold.
"""
import os
import sys

# run from a checkout: the package beside bench/
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fastgrad.benchmarks.compare import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
