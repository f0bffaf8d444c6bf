"""Shared helpers of the article scripts: "article vs fastgrad" rows, the command line, figures.

Every checked number is printed as one row, ``" | "``-separated so that a test can parse it::

    check | <label> | article <as printed, or -> | fastgrad <value> | exact <value> | tol <tol> | <verdict>

``exact`` is the right value, computed independently of fastgrad (a closed form, or the
article's own recipe run in plain Python). ``fastgrad`` must equal ``exact`` within ``tol``
(else the verdict starts with ``FAIL``). The article's number, given as the string it
prints, is compared with ``exact`` to the precision it is written with: when it disagrees
the verdict says ``ARTICLE WRONG``, and the script explains why beneath the row.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile

PREFIX = "check | "
_failures = []


def _article_agrees(article: str, exact: float) -> bool:
    """Does the article's printed number round-trip to ``exact`` at the precision it is written with?"""
    text = article.strip()
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text.lower() else 0
    return abs(float(text) - exact) <= 0.5 * 10.0 ** (-decimals) * (1 + 1e-9) + 1e-12


def check(label, article, value, exact=None, tol=1e-6):
    """Print one row comparing the article's number (a string, or None when it states none),
    fastgrad's ``value`` and the ``exact`` value (default: the article's number). Returns the
    verdict; a fastgrad value off by more than ``tol`` is recorded as a failure."""
    if exact is None:
        if article is None:
            raise ValueError(f"{label}: give exact when the article states no number")
        exact = float(article)
    value, exact = float(value), float(exact)
    fastgrad_ok = math.isfinite(value) and abs(value - exact) <= tol
    if article is None:
        verdict = "not stated"
    elif _article_agrees(article, exact):
        verdict = "article agrees"
    else:
        verdict = "ARTICLE WRONG"
    verdict = ("fastgrad ok; " if fastgrad_ok else "FAIL: fastgrad differs; ") + verdict
    if not fastgrad_ok:
        _failures.append(label)
    shown = "-" if article is None else article
    print(f"{PREFIX}{label:<52} | article {shown:>10} | fastgrad {value:>18.12g} | exact {exact:>18.12g} "
          f"| tol {tol:.0e} | {verdict}")
    return verdict


def note(text):
    """An explanation under a row (indented, never parsed)."""
    print(f"      -> {text}")


def section(title):
    print(f"\n== {title} ==")


def parser(doc):
    """The scripts' common command line: ``--quick`` and ``--plot [--plot-dir DIR]``."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="shorter illustrative runs (for tests); every checked value is the same")
    p.add_argument("--plot", action="store_true", help="save the article's figures as PNG (needs matplotlib)")
    p.add_argument("--plot-dir", default=os.path.join(tempfile.gettempdir(), "fastgrad-articles"),
                   help="where --plot writes (default: a folder in the system's temporary directory)")
    return p


def pyplot(args):
    """matplotlib.pyplot with a file-only backend when ``--plot`` was given and matplotlib is installed."""
    if not args.plot:
        return None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot: matplotlib is not installed (pip install matplotlib); no figures")
        return None
    return plt


def save(plt, fig, args, name):
    """Write ``fig`` to ``<plot-dir>/<name>`` (outside the repository by default) and say where."""
    os.makedirs(args.plot_dir, exist_ok=True)
    path = os.path.join(args.plot_dir, name)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"figure saved to {path}")
    return path


def finish():
    """Summarise; exit with status 1 when a fastgrad value missed its exact value."""
    if _failures:
        print(f"\n{len(_failures)} value(s) where fastgrad missed the exact value: {', '.join(_failures)}")
        sys.exit(1)
    print("\nall checked values: fastgrad matches the exact value")
