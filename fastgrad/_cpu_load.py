"""Other processes' CPU use, from ``/proc/stat`` (Linux; None elsewhere): the one measurement
behind the benchmarks' load report (fastgrad.benchmarks.load) and the thread policy
(fastgrad._threads).

Other processes' use over a window = (busy CPU time of the whole machine - this process's own
CPU time) / wall time, in cores: ``/proc/stat`` gives the machine's busy jiffies, :func:`os.times`
this process's (every thread of it, and its waited-for children). 1.0 means other processes kept
one core busy for the whole window. The resolution is one clock tick (usually 10 ms) per window,
so windows shorter than :data:`MIN_WINDOW` are not judged.
"""
from __future__ import annotations

import os
import time

# windows shorter than this read one clock tick as a large load: they are not judged
MIN_WINDOW = 0.05


def busy_seconds():
    """Busy CPU seconds of the whole machine since boot (all cores), or None without /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_seconds():
    """CPU seconds of this process (all its threads) and its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def sample():
    """A point to measure from: (machine busy seconds or None, own seconds, wall seconds)."""
    return busy_seconds(), own_seconds(), time.perf_counter()


def others_use(start, end):
    """Other processes' CPU use (cores) between two :func:`sample` points; None where
    ``/proc/stat`` is unavailable or the window is shorter than :data:`MIN_WINDOW`."""
    (busy0, own0, wall0), (busy1, own1, wall1) = start, end
    if busy0 is None or busy1 is None or wall1 - wall0 < MIN_WINDOW:
        return None
    return max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))
