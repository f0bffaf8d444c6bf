"""fastgrad: Numba-compiled kernels for the calculus of learning on a CPU.

``import fastgrad`` compiles nothing: each kernel compiles on first use (and is cached
on disk); :func:`warmup` compiles ahead of time.
"""
from fastgrad import analysis, callbacks, datasets, diff, functional, init, optim, reference, schedules, testfunctions
from fastgrad import functional as F
from fastgrad._threads import blas_phase, describe_threads, get_num_threads, set_num_threads, thread_info
from fastgrad._warmup import warmup
from fastgrad.custom import ActivationFn, Loss
from fastgrad.analysis import Curvature, SingularHessianError, curvature, newton_step, taylor
from fastgrad.diff import GradCheck, check_grad
from fastgrad.layers import Activation, BatchNorm1d, Dense, Dropout, LayerNorm, Residual
from fastgrad.minimize import MinimizeResult, minimize
from fastgrad.lr_finder import LRFinderResult, lr_find
from fastgrad.model import Sequential

__version__ = "0.1.0"

__all__ = (
    "F", "functional", "reference", "optim", "schedules", "init", "diff", "analysis", "testfunctions",
    "callbacks", "datasets", "Sequential", "Loss", "ActivationFn", "Dense", "Activation", "Dropout", "LayerNorm", "BatchNorm1d",
    "Residual", "lr_find", "LRFinderResult", "minimize", "MinimizeResult", "check_grad", "GradCheck",
    "curvature", "newton_step", "taylor", "Curvature", "SingularHessianError", "warmup", "set_num_threads", "blas_phase",
    "get_num_threads", "thread_info", "describe_threads", "__version__",
)
