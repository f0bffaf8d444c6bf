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

from fastgrad.kernels.program import Data, Record
from fastgrad.layers import Activation, BatchNorm1d, Dense, Dropout
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


def build_model(units, activation, loss, dtype, dropout=0.0, batch_norm=False):
    """A Sequential of ``len(units) - 1`` Dense layers: hidden ones apply ``activation``, the
    last is linear (its activation is the fused loss's).

    ``batch_norm``: each hidden layer is ``Dense`` (linear, no bias: BatchNorm1d's mean removes
    it) -> ``BatchNorm1d`` -> ``Activation``, the arrangement of Ioffe and Szegedy (2015) and of
    most PyTorch and Keras networks (the activation normalized before the nonlinearity, not
    fused into the Dense). ``dropout > 0``: a ``Dropout(dropout)`` after each hidden
    layer's activation (never after the output layer).
    """
    layers = []
    for n_in, n_out in zip(units[:-2], units[1:-1]):
        if batch_norm:
            layers += [Dense(n_in, n_out, use_bias=False), BatchNorm1d(n_out)]
            if activation != "identity":
                layers.append(Activation(activation))
        else:
            layers.append(Dense(n_in, n_out, activation))
        if dropout > 0:
            layers.append(Dropout(dropout))
    layers.append(Dense(units[-2], units[-1]))
    return Sequential(layers, loss=loss, dtype=dtype, seed=0)


def dense_layers(model):
    return [layer for layer in model.layers if isinstance(layer, Dense)]


def dense_units(model):
    """The widths [n_in, hidden..., n_out] of the model's Dense layers."""
    return [layer.n_in for layer in dense_layers(model)] + [model.n_out]


def weight_views(model):
    """(coefs, intercepts), views into ``model.params``: each Dense layer's W, and its b or,
    for a Dense without bias (``batch_norm``), the bias (beta) of the BatchNorm1d after it."""
    coefs, intercepts = [], []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Dense):
            coefs.append(layer.W)
            intercepts.append(layer.b if layer.b is not None else model.layers[i + 1].bias)
    return coefs, intercepts


def architecture(model):
    """What :func:`build_model` built ``model`` from: {"units", "activation" (fastgrad's name),
    "dropout", "batch_norm"}."""
    hidden = model.layers[:-1]
    acts = [layer.activation for layer in hidden
            if isinstance(layer, Activation) or (isinstance(layer, Dense) and layer.use_bias)]
    drops = [layer.p for layer in hidden if isinstance(layer, Dropout)]
    return {"units": dense_units(model), "activation": acts[0] if acts else "identity",
            "dropout": float(drops[0]) if drops else 0.0,
            "batch_norm": any(isinstance(layer, BatchNorm1d) for layer in hidden)}


def model_state(model):
    """The model as plain data (its architecture and copies of its arrays, optimizer state and
    RNG state), what :func:`model_from_state` rebuilds it from: the estimators' pickles."""
    return dict(architecture(model), loss=model.loss, dtype=model.dtype.name, params=model.params.copy(),
                state=model.state.copy(), optimizer=optimizer_state(model.optimizer),
                rng_state=model.rng.bit_generator.state, epochs_done=model.epochs_done,
                dropout_seed=model.dropout_seed)


def model_from_state(saved):
    """The model :func:`model_state` describes, exactly (training resumes identically)."""
    model = build_model(saved["units"], saved["activation"], saved["loss"], saved["dtype"],
                        saved.get("dropout", 0.0), saved.get("batch_norm", False))
    model.params[:] = saved["params"]
    if "state" in saved:
        model.state[:] = saved["state"]
    model.optimizer = restore_optimizer(saved["optimizer"])
    model.rng.bit_generator.state = saved["rng_state"]
    model.epochs_done = saved["epochs_done"]
    model.dropout_seed = saved.get("dropout_seed", model.dropout_seed)
    return model


def rebuild(model, dropout):
    """A copy of ``model`` with Dropout(``dropout``) after its hidden layers (none for 0): the
    same parameters, running statistics and optimizer (its parameter layout is the same)."""
    return model_from_state(dict(model_state(model), dropout=dropout))


def glorot_init(model, random_state, factor):
    """scikit-learn's initialisation, drawn in its order: per Dense layer W then b (when it has
    one), both uniform in ``+-sqrt(factor / (fan_in + fan_out))`` (factor 2 for logistic, else
    6). BatchNorm1d keeps PyTorch's start: weight 1, bias 0, running mean 0 and variance 1."""
    for layer in dense_layers(model):
        bound = np.sqrt(factor / (layer.n_in + layer.n_out))
        layer.W[...] = random_state.uniform(-bound, bound, (layer.n_in, layer.n_out))
        if layer.b is not None:
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


def run_epoch(model, X, yf, yl, use_labels, perm, batch_size, lr, l1_rows, l2_rows, clip, weights=None,
              fold_single=False):
    """Train on every mini-batch of ``perm`` (rows ``perm[i*b:(i+1)*b]``) in compiled code.

    ``weights``: validated row weights (n,) in the model's dtype (gathered with the rows by
    the kernel; its batch loss is then ``sum_i w_i l_i / sum_i w_i``), or None. The kernel
    penalty of a batch is ``(l1_rows / m, l2_rows / m)`` with ``m`` its row count, or with
    weights its weight sum (scikit-learn's ``_backprop`` divides the L2 term by
    ``sample_weight.sum()``); a batch whose weights are all 0 gets no penalty (scikit-learn
    divides by zero there). Consecutive batches with the same size and ``m`` run in one call
    (without weights: the full batches, then a shorter last one). ``fold_single``: a last
    batch of one row joins the batch before (see :func:`batch_sizes`). ``lr`` is the
    optimizer's learning rate for every batch; ``clip`` the max gradient norm (0: none).
    Returns (batch losses, batch sizes, index of the first non-finite batch or None).
    """
    n = X.shape[0]
    _check_kernel_weights(weights, n, model.dtype)
    sizes = batch_sizes(n, batch_size, fold_single)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    losses = np.zeros(sizes.shape[0])
    correct = np.zeros(sizes.shape[0], dtype=np.int64)
    lrs = np.full(sizes.shape[0], float(lr))
    status = np.zeros(3, np.int64)  # kernels.train's failure reason and progress
    diag = np.zeros((model.program.shape[0], 3))
    data = Data(X, yf, yl, use_labels, model._kernel_weights(weights))
    denominators = penalty_denominators(sizes, weights, perm)
    for first, last in _runs(sizes, denominators):
        m = denominators[first]
        objective = model._objective(l1=l1_rows / m, l2=l2_rows / m, l1_prox=False)
        # the run's batches from the start of its rows: batch i of the call is batch first + i
        record = Record(losses[first:last], correct[first:last], False, diag, status)
        stop = train_range(model, data, perm[starts[first]:], int(sizes[first]), 0, last - first, record,
                           lrs[first:last], clip, objective)
        if stop < last - first:
            return losses, sizes, first + int(stop)
    return losses, sizes, None


def batch_sizes(n, batch_size, fold_single=False):
    """The row counts (int64) of an epoch's batches over n rows: ``batch_size`` each, the last
    one what is left. ``fold_single``: a last batch of one row joins the one before (which
    gets ``batch_size + 1`` rows), as BatchNorm1d has no batch variance over one row."""
    n_batches = math.ceil(n / batch_size)
    sizes = np.full(n_batches, batch_size, dtype=np.int64)
    sizes[-1] = n - batch_size * (n_batches - 1)
    if fold_single and n_batches > 1 and sizes[-1] == 1:
        sizes = sizes[:-1]
        sizes[-1] += 1
    return sizes


def _check_kernel_weights(weights, n, dtype):
    """The kernels index the weights by row without bounds checks: one weight per row of X,
    C-contiguous, in the model's dtype, or ``ValueError`` before any kernel runs."""
    if weights is not None and (weights.shape != (n,) or weights.dtype != dtype
                                or not weights.flags.c_contiguous):
        raise ValueError(f"weights must be a C-contiguous {np.dtype(dtype).name} array ({n},) for X's {n} rows, "
                         f"got {weights.dtype} {weights.shape}")


def penalty_denominators(sizes, weights, perm):
    """Each batch's ``m`` (float64): its row count (``sizes``, consecutive rows of ``perm``),
    or the sum of its rows' weights (``inf`` for a sum of 0, so that ``l_rows / m`` is 0)."""
    if weights is None:
        return sizes.astype(np.float64)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    sums = np.add.reduceat(weights[perm].astype(np.float64), starts)
    sums[sums == 0] = np.inf
    return sums


def _runs(*columns):
    """(first, last) of each run of consecutive positions where every column's value is equal."""
    changes = np.zeros(columns[0].shape[0] - 1, dtype=bool)
    for values in columns:
        changes |= values[1:] != values[:-1]
    cuts = np.flatnonzero(changes) + 1
    bounds = [0, *cuts.tolist(), columns[0].shape[0]]
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
