"""Optional plotting for the examples: only with ``--plot`` and only when matplotlib is importable."""
from __future__ import annotations

import os
import tempfile


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


def plot_dir():
    """Where figures go: ``$FASTGRAD_PLOT_DIR`` if set, else ``<system temp>/fastgrad-plots``
    (never the source tree, so running an example leaves no untracked files behind)."""
    folder = os.environ.get("FASTGRAD_PLOT_DIR") or os.path.join(tempfile.gettempdir(), "fastgrad-plots")
    os.makedirs(folder, exist_ok=True)
    return folder


def save(plt, fig, script_file, name):
    """Save ``fig`` as ``<plot_dir()>/<script name>-<name>`` and say where."""
    stem = os.path.splitext(os.path.basename(script_file))[0]
    path = os.path.join(plot_dir(), f"{stem}-{name}")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"plot saved to {path}")
    return path
