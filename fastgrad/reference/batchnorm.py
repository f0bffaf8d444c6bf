"""NumPy twin of :mod:`fastgrad.kernels.batchnorm`: batch normalisation per column
(``torch.nn.BatchNorm1d`` on (m, n) input), with the kernels' names, signatures and
precision rules (statistics, sums and the running-statistics update in float64)."""
import numpy as np

from fastgrad.reference.layernorm import affine_row, column_param_grads, normalize_row, store_param_grads


def batch_norm_forward(x, gamma, beta, eps, momentum, running_mean, running_var, use_batch_stats,
                       update_running, out, xhat, rstd):
    """xhat = (x - mean_j) rstd_j, rstd_j = 1/sqrt(var_j + eps) with the batch's mean and biased
    variance (``use_batch_stats``) or the running ones; out = xhat gamma + beta. With
    ``update_running``: running = (1 - momentum) running + momentum stat (unbiased variance)."""
    m = x.shape[0]
    x64 = x.astype(np.float64)
    if use_batch_stats:
        mean = x64.mean(axis=0)
        sq = ((x64 - mean) ** 2).sum(axis=0)
        var = sq / m
        if update_running:
            mom = np.float64(momentum)
            running_mean[...] = mom * mean + (1.0 - mom) * running_mean.astype(np.float64)
            running_var[...] = mom * (sq / (m - 1)) + (1.0 - mom) * running_var.astype(np.float64)
    else:
        mean = running_mean.astype(np.float64)
        var = running_var.astype(np.float64)
    s = 1.0 / np.sqrt(var + np.float64(eps))
    rstd[...] = s
    normalize_row(x64, mean, s, xhat)
    affine_row(xhat, gamma, beta, out)


def batch_norm_backward(grad_out, xhat, rstd, gamma, used_batch_stats, grad_x, grad_gamma,
                        grad_beta, need_grad_x):
    """grad_gamma = sum_r grad_out xhat, grad_beta = sum_r grad_out; with g = grad_out gamma:
    grad_x = rstd_j/m (m g - sum_r g - xhat sum_r(g xhat)) with batch statistics, else g rstd_j."""
    m = grad_out.shape[0]
    sum_go, sum_go_xhat = column_param_grads(grad_out, xhat)
    store_param_grads(sum_go, sum_go_xhat, grad_gamma, grad_beta)
    if not need_grad_x:
        return
    t = grad_out.dtype.type
    scale = (gamma if gamma.size else t(1.0)) * rstd
    if used_batch_stats:
        c1 = (sum_go / m).astype(t)
        c2 = (sum_go_xhat / m).astype(t)
        grad_x[...] = scale * (grad_out - c1 - xhat * c2)
    else:
        grad_x[...] = grad_out * scale
