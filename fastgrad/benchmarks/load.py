"""The machine's load from other processes, sampled from ``/proc`` (Linux; None elsewhere).

A timing is only as good as the machine was quiet while it ran. Other processes' CPU use is
measured as (busy CPU time of the whole machine - this process's own CPU time) / wall time,
in cores: ``/proc/stat`` gives the machine's busy jiffies, :func:`os.times` this process's
(every thread of it, and its waited-for children). A value of 1.0 means another process kept
one core busy for the whole window. The resolution is one clock tick (usually 10 ms) per
window, so windows shorter than ~0.1 s read coarse values.
"""
from __future__ import annotations

import os
import time

__all__ = ("BUSY_CORES", "MIN_WINDOW", "LoadMeter", "others_load", "load_average", "load_summary", "is_quiet")

# other processes' use (cores) above which a timing is re-taken, then marked busy
BUSY_CORES = 0.2
# load average per core above which a machine is not quiet (the demo's threshold)
BUSY_LOAD_PER_CORE = 0.5


def _busy_seconds():
    """Busy CPU seconds of the whole machine since boot (all cores), or None without /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# windows shorter than this read one clock tick as a large load: they are not judged
MIN_WINDOW = 0.05


class LoadMeter:
    """``with LoadMeter() as m: ...`` then ``m.cores``: other processes' CPU use (cores) while the
    block ran; None where ``/proc/stat`` is unavailable or the block lasted under ``MIN_WINDOW`` s."""

    def __enter__(self):
        self._busy, self._own, self._wall = _busy_seconds(), _own_seconds(), time.perf_counter()
        self.cores = None
        return self

    def __exit__(self, *exc):
        busy, own, wall = _busy_seconds(), _own_seconds(), time.perf_counter()
        if busy is not None and self._busy is not None and wall - self._wall >= MIN_WINDOW:
            others = (busy - self._busy) - (own - self._own)
            self.cores = max(0.0, others / max(wall - self._wall, 1e-9))
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
