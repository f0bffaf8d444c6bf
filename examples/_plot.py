"""Optional plotting for the examples: only with ``--plot`` and only when matplotlib is importable."""
from __future__ import annotations

import os


def pyplot(enabled):
    """matplotlib.pyplot (non-interactive backend) when ``enabled`` and installed, else None (says why)."""
    if not enabled:
        return None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot: matplotlib is not installed (pip install matplotlib); skipping the plot")
        return None
    return plt


def save(plt, fig, script_file, name):
    """Save ``fig`` as ``name`` next to the script and say where."""
    path = os.path.join(os.path.dirname(os.path.abspath(script_file)), name)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"plot saved to {path}")
    return path
