"""fastgrad: Numba-compiled kernels for the calculus of learning on a CPU.

``import fastgrad`` compiles nothing: each kernel compiles on first use (and is cached
on disk); :func:`warmup` compiles ahead of time.
"""
from fastgrad import functional
from fastgrad import functional as F
from fastgrad import reference
from fastgrad._threads import describe_threads, get_num_threads, set_num_threads, thread_info
from fastgrad._warmup import warmup

__version__ = "0.1.0"

__all__ = (
    "F", "functional", "reference", "warmup", "set_num_threads", "get_num_threads",
    "thread_info", "describe_threads", "__version__",
)
