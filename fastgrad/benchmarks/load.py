"""The machine's load from other processes, for the benchmarks' reports (Linux; None elsewhere).

A timing is only as good as the machine was quiet while it ran. Other processes' CPU use (in
cores, 1.0 = one core kept busy) is measured by fastgrad._cpu_load from ``/proc/stat`` and this
process's own CPU time; windows shorter than ``MIN_WINDOW`` are not judged.
"""
from __future__ import annotations

import os
import time

from fastgrad._cpu_load import MIN_WINDOW, others_use, sample

__all__ = ("BUSY_CORES", "MIN_WINDOW", "LoadMeter", "others_load", "load_average", "load_summary", "is_quiet")

# other processes' use (cores) above which a timing is re-taken, then marked busy
BUSY_CORES = 0.2
# load average per core above which a machine is not quiet (the demo's threshold)
BUSY_LOAD_PER_CORE = 0.5


class LoadMeter:
    """``with LoadMeter() as m: ...`` then ``m.cores``: other processes' CPU use (cores) while the
    block ran; None where ``/proc/stat`` is unavailable or the block lasted under ``MIN_WINDOW`` s."""

    def __enter__(self):
        self._start = sample()
        self.cores = None
        return self

    def __exit__(self, *exc):
        self.cores = others_use(self._start, sample())
        return False


def others_load(seconds=0.5):
    """Other processes' CPU use (cores) over ``seconds`` while this process sleeps; None without /proc."""
    with LoadMeter() as meter:
        time.sleep(seconds)
    return meter.cores


def load_average():
    """The 1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return list(os.getloadavg())
    except (AttributeError, OSError):
        return None


def is_quiet(others_cores, loadavg=None, cores=None) -> bool:
    """True when other processes used less than :data:`BUSY_CORES` cores and (if given) the 1-minute
    load average is at most :data:`BUSY_LOAD_PER_CORE` per core. Unknown figures do not count."""
    if others_cores is not None and others_cores >= BUSY_CORES:
        return False
    cores = cores or os.cpu_count() or 1
    return not (loadavg and loadavg[0] > BUSY_LOAD_PER_CORE * cores)


def load_summary(seconds=0.5, after_own_work=False) -> dict:
    """{"others_cores", "load_average", "cores", "quiet"}: a sample of the machine's load now.

    ``after_own_work``: the sample ends a run that kept a core busy itself, whose last minute
    the load average still counts; only the other processes' measured use then decides
    ``quiet`` (the load average is still reported)."""
    others = others_load(seconds)
    avg = load_average()
    cores = os.cpu_count()
    quiet = is_quiet(others, None if after_own_work and others is not None else avg, cores)
    return {"others_cores": others, "load_average": avg, "cores": cores, "quiet": quiet}
