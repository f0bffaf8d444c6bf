"""Gradient clipping and statistics in plain NumPy: twins of :mod:`fastgrad.kernels.grad_utils`.

Same names and signatures; PyTorch's ``clip_grad_norm_`` semantics
(``g *= min(1, max_norm / (total_norm + 1e-6))``). Norms are computed in float64.
"""
import math

import numpy as np

N_STATS = 5


def power_sum(grads, norm_type):
    """``sum |g|^p`` (``max |g|`` for ``p = inf``), in float64."""
    a = np.abs(grads.astype(np.float64))
    if math.isinf(norm_type):
        return float(np.max(a, initial=0.0))
    return float(np.sum(a ** norm_type))


def finish_norm(acc, norm_type):
    """``acc^(1/p)``; ``acc`` for inf."""
    return acc if math.isinf(norm_type) else acc ** (1.0 / norm_type)


def grad_norm(grads, norm_type):
    """``(sum |g|^p)^(1/p)``, or ``max |g|`` for ``p = inf``."""
    return finish_norm(power_sum(grads, norm_type), norm_type)


def clip_coef(total_norm, max_norm):
    """``min(1, max_norm / (total_norm + 1e-6))``, NaN propagating (``torch.clamp``)."""
    coef = max_norm / (total_norm + 1e-6)
    return coef if not coef > 1.0 else 1.0


def scale_inplace(grads, factor):
    """``grads *= factor``."""
    grads *= grads.dtype.type(factor)


def clip_grad_norm(grads, max_norm, norm_type):
    """Scale ``grads`` in place to norm at most ``max_norm``; returns the norm before."""
    total = grad_norm(grads, norm_type)
    scale_inplace(grads, clip_coef(total, max_norm))
    return total


def clip_to_max_norm(grads, max_norm):
    """The training loop's clipping: the L2 norm (float64); ``grads *= max_norm / (norm + 1e-6)``
    when it is finite and above ``max_norm``."""
    norm = grad_norm(grads, 2.0)
    if math.isfinite(norm) and norm > max_norm:
        scale_inplace(grads, max_norm / (norm + 1e-6))
    return norm


def clip_grad_value(grads, clip_value):
    """Clamp ``grads`` in place to ``[-clip_value, clip_value]``."""
    np.clip(grads, -clip_value, clip_value, out=grads)


def grad_stats_sums(grads, out):
    """``out[:] = [sum g^2, max |g|, sum |g|, zeros, non-finite]``, sums over finite entries."""
    finite = np.isfinite(grads)
    a = np.abs(grads[finite].astype(np.float64))
    out[:] = (np.sum(a * a), np.max(a, initial=0.0), np.sum(a), np.count_nonzero(a == 0),
              grads.size - np.count_nonzero(finite))


def count_nonfinite(grads):
    """How many entries are NaN or +-inf."""
    return int(grads.size - np.count_nonzero(np.isfinite(grads)))
