"""The fastgrad side of the estimators: the network, its optimizer, one epoch, and L-BFGS.

The estimators minimise scikit-learn's MLP objective for a batch of ``m`` rows,

    J = data_loss + alpha / (2 m) * sum ||W||^2 + l1 / m * sum |W|

(sklearn/neural_network/_multilayer_perceptron.py, ``_backprop``: the L2 term
``0.5 * alpha * ||W||^2 / n_samples`` of the batch; biases are not penalised).
:class:`~fastgrad.Sequential`'s compiled loss is ``c * data_loss`` for a constant ``c``
(``LOSS_SCALE``) and its penalty is ``l1 * sum|W| + l2 * sum W^2`` per batch, whatever
the batch size; so the kernel gets ``l1_k = c l1 / m`` and ``l2_k = c alpha / (2 m)``,
recomputed for a shorter last batch, and minimises ``c J`` exactly. Optimizers see a
gradient ``c`` times scikit-learn's: SGD's learning rate is divided by ``c`` and the
adaptive methods' ``epsilon`` multiplied by ``c``, which makes their steps those of ``J``.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from fastgrad.kernels.program import Data, Objective, Record
from fastgrad.layers import Dense
from fastgrad.model import Sequential
from fastgrad.optim import SGD, Adagrad, Adam, AdamW, RMSprop
from fastgrad.training import train_range

SOLVERS = ("adam", "sgd", "adamw", "rmsprop", "adagrad", "lbfgs")
OPTIMIZERS = {cls.__name__: cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad)}


def loss_scale(loss, n_outputs):
    """``c`` with Sequential's loss = ``c`` * scikit-learn's data loss, for ``n_outputs`` outputs.

    softmax cross-entropy: both are the mean over rows (c = 1); binary cross-entropy:
    fastgrad averages over rows and outputs, scikit-learn sums over outputs (c = 1/k);
    squared error: fastgrad's mean of (f - y)^2 over rows and outputs, scikit-learn's
    gradient is that of sum over outputs of the row mean of (f - y)^2 / 2 (c = 2/k).
    """
    return {"softmax_cross_entropy": 1.0, "binary_cross_entropy": 1.0 / n_outputs,
            "mse": 2.0 / n_outputs}[loss]


def build_model(units, activation, loss, dtype):
    """A Sequential of ``len(units) - 1`` Dense layers (hidden ``activation``, a linear last layer)."""
    layers = [Dense(units[i], units[i + 1], activation if i < len(units) - 2 else "identity")
              for i in range(len(units) - 1)]
    return Sequential(layers, loss=loss, dtype=dtype, seed=0)


def glorot_init(model, random_state, factor):
    """scikit-learn's initialisation, drawn in its order: per layer W then b, both
    uniform in ``+-sqrt(factor / (fan_in + fan_out))`` (factor 2 for logistic, else 6)."""
    for layer in model.layers:
        bound = np.sqrt(factor / (layer.n_in + layer.n_out))
        layer.W[...] = random_state.uniform(-bound, bound, (layer.n_in, layer.n_out))
        layer.b[...] = random_state.uniform(-bound, bound, layer.n_out)


def make_optimizer(solver, est, c):
    """The fastgrad optimizer for ``solver`` with the estimator's hyperparameters, scaled by ``c``.

    ``adamw`` takes ``alpha`` as its decoupled weight decay (and the loss then has no L2
    term); ``rmsprop``/``adagrad`` keep PyTorch's other defaults.
    """
    eps = est.epsilon * c
    if solver == "sgd":
        momentum = float(est.momentum)
        return SGD(lr=est.learning_rate_init / c, momentum=momentum,
                   nesterov=bool(est.nesterovs_momentum) and momentum > 0)
    if solver == "adam":
        return Adam(lr=est.learning_rate_init, betas=(est.beta_1, est.beta_2), eps=eps)
    if solver == "adamw":
        return AdamW(lr=est.learning_rate_init, betas=(est.beta_1, est.beta_2), eps=eps, weight_decay=est.alpha)
    if solver == "rmsprop":
        return RMSprop(lr=est.learning_rate_init, eps=eps)
    return Adagrad(lr=est.learning_rate_init, eps=eps)


def restore_optimizer(saved):
    """An optimizer from ``(class name, state_dict)`` as :func:`optimizer_state` wrote it."""
    name, state = saved
    opt = OPTIMIZERS[name](**state["hyperparameters"])
    opt.load_state_dict(state)
    return opt


def optimizer_state(opt):
    return type(opt).__name__, opt.state_dict()


def run_epoch(model, X, yf, yl, use_labels, perm, batch_size, lr, l1_rows, l2_rows, clip, weights=None):
    """Train on every mini-batch of ``perm`` (rows ``perm[i*b:(i+1)*b]``) in compiled code.

    ``weights``: validated row weights (n,) in the model's dtype (gathered with the rows by
    the kernel; its batch loss is then ``sum_i w_i l_i / sum_i w_i``), or None. The kernel
    penalty of a batch is ``(l1_rows / m, l2_rows / m)`` with ``m`` its row count, or with
    weights its weight sum (scikit-learn's ``_backprop`` divides the L2 term by
    ``sample_weight.sum()``); a batch whose weights are all 0 gets no penalty (scikit-learn
    divides by zero there). Consecutive batches with the same ``m`` run in one call (without
    weights: the full batches, then a shorter last one). ``lr`` is the optimizer's learning
    rate for every batch; ``clip`` the max gradient norm (0: none).
    Returns (batch losses, batch sizes, index of the first non-finite batch or None).
    """
    n = X.shape[0]
    _check_kernel_weights(weights, n, model.dtype)
    n_batches = math.ceil(n / batch_size)
    losses = np.zeros(n_batches)
    correct = np.zeros(n_batches, dtype=np.int64)
    lrs = np.full(n_batches, float(lr))
    status = np.zeros(1, np.int64)  # kernels.train's failure reason
    diag = np.zeros((model.program.shape[0], 3))
    sizes = np.full(n_batches, batch_size)
    sizes[-1] = n - batch_size * (n_batches - 1)
    data = Data(X, yf, yl, use_labels, model._kernel_weights(weights))
    record = Record(losses, correct, False, diag, status)
    denominators = penalty_denominators(sizes, weights, perm, batch_size)
    for first, last in _runs(denominators):
        m = denominators[first]
        objective = Objective(model._loss_code, model._loss_param, float(l1_rows / m), float(l2_rows / m))
        stop = train_range(model, data, perm, batch_size, first, last, record, lrs, clip, objective)
        if stop < last:
            return losses, sizes, int(stop)
    return losses, sizes, None


def _check_kernel_weights(weights, n, dtype):
    """The kernels index the weights by row without bounds checks: one weight per row of X,
    C-contiguous, in the model's dtype, or ``ValueError`` before any kernel runs."""
    if weights is not None and (weights.shape != (n,) or weights.dtype != dtype
                                or not weights.flags.c_contiguous):
        raise ValueError(f"weights must be a C-contiguous {np.dtype(dtype).name} array ({n},) for X's {n} rows, "
                         f"got {weights.dtype} {weights.shape}")


def penalty_denominators(sizes, weights, perm, batch_size):
    """Each batch's ``m`` (float64): its row count, or the sum of its rows' weights (``inf``
    for a sum of 0, so that ``l_rows / m`` is 0)."""
    if weights is None:
        return sizes.astype(np.float64)
    sums = np.add.reduceat(weights[perm].astype(np.float64), np.arange(0, perm.shape[0], batch_size))
    sums[sums == 0] = np.inf
    return sums


def _runs(values):
    """(first, last) of each run of equal consecutive ``values``."""
    cuts = np.flatnonzero(values[1:] != values[:-1]) + 1
    bounds = [0, *cuts.tolist(), values.shape[0]]
    return list(zip(bounds[:-1], bounds[1:]))


def fit_lbfgs(model, X, yf, yl, use_labels, c, l1_rows, l2_rows, max_iter, max_fun, tol, verbose, weights=None):
    """Minimise ``J`` over the whole data set with SciPy's L-BFGS-B, as scikit-learn does
    (``maxiter=max_iter``, ``maxfun=max_fun``, ``gtol=tol``), using the compiled full-batch
    loss and gradient, weighted by ``weights`` (n,) in the model's dtype unless None (the
    penalty then divides by their sum instead of n, as scikit-learn's). Leaves the solution
    in ``model.params``; returns (n_iter, final J, J after each iteration); warns
    ``ConvergenceWarning`` if not converged.
    """
    import scipy.optimize
    from sklearn.exceptions import ConvergenceWarning
    n = X.shape[0]
    _check_kernel_weights(weights, n, model.dtype)
    curve = []

    def fun(p):
        model.params[:] = p
        loss = model._batch_grad(X, yf, yl, use_labels, w=weights)
        return loss / c, model.grads.astype(np.float64) / c

    def callback(intermediate_result):
        curve.append(float(intermediate_result.fun))
        if verbose:
            print(f"Iteration {len(curve)}, loss = {curve[-1]:.8f}")

    m = n if weights is None else float(np.sum(weights, dtype=np.float64))
    model.l1, model.l2 = float(l1_rows / m), float(l2_rows / m)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            result = scipy.optimize.minimize(fun, model.params.astype(np.float64), method="L-BFGS-B", jac=True,
                                             callback=callback,
                                             options={"maxiter": max_iter, "maxfun": max_fun, "gtol": tol})
    finally:
        model.l1 = model.l2 = 0.0
    model.params[:] = result.x
    if result.status != 0:
        warnings.warn(f"lbfgs failed to converge after {result.nit} iterations (status={result.status}): "
                      f"{result.message}. Increase max_iter or scale the data.", ConvergenceWarning, stacklevel=3)
    return min(int(result.nit), max_iter), float(result.fun), curve
