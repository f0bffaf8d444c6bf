"""What MLPClassifier and MLPRegressor share: parameters, fit/partial_fit, early stopping, pickling.

The control flow follows scikit-learn's ``BaseMultilayerPerceptron`` (same order of
random draws, same stopping rules, same fitted attributes); the epochs run in
fastgrad's compiled loop (:mod:`fastgrad.sklearn._train`).
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from fastgrad._checks import as_float_dtype, as_int, as_scalar, check_choice
from fastgrad._compile_jobs import compile_for_fit
from fastgrad.callbacks import History
from fastgrad.kernels.activations import IDENTITY
from fastgrad.kernels.program import EVAL
from fastgrad.sklearn import _train
from fastgrad.sklearn._weights import kernel_weights, sample_weights

# scikit-learn's hidden activations plus fastgrad's elementwise ones ("logistic" is sigmoid).
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
               "sigmoid": "sigmoid", "leaky_relu": "leaky_relu", "elu": "elu", "gelu": "gelu",
               "softplus": "softplus", "silu": "silu"}
LEARNING_RATES = ("constant", "invscaling", "adaptive")


def _kernel_array(a, dtype):
    """``a`` as a plain, writeable, C-contiguous ndarray of ``dtype`` (a read-only array or
    a memmap would make Numba compile another signature)."""
    if type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable:
        return a
    return np.array(a, dtype=dtype, order="C")


class BaseMLP(BaseEstimator):
    """Base class of :class:`MLPClassifier` and :class:`MLPRegressor`; not for direct use."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype="float32", clip_norm=None, l1=0.0, dropout=0.0, batch_norm=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.clip_norm = clip_norm
        self.l1 = l1
        self.dropout = dropout
        self.batch_norm = batch_norm

    # ----- parameters -------------------------------------------------------------------------
    def _hidden_units(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else sizes
        try:
            sizes = list(sizes)
        except TypeError:
            raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints, got {sizes!r}") from None
        return [as_int(s, f"hidden_layer_sizes[{i}]", low=1) for i, s in enumerate(sizes)]

    def _check_params(self):
        """Validate every hyperparameter (``ValueError``/``TypeError`` naming it)."""
        check_choice(self.activation, "activation", tuple(ACTIVATIONS))
        check_choice(self.solver, "solver", _train.SOLVERS)
        check_choice(self.learning_rate, "learning_rate", LEARNING_RATES)
        as_scalar(self.alpha, "alpha", low=0.0)
        as_scalar(self.l1, "l1", low=0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            as_int(self.batch_size, "batch_size", low=1)
        as_scalar(self.learning_rate_init, "learning_rate_init", low=0.0, low_open=True)
        as_scalar(self.power_t, "power_t", low=0.0)
        as_int(self.max_iter, "max_iter", low=1)
        as_int(self.max_fun, "max_fun", low=1)
        as_scalar(self.tol, "tol", low=0.0)
        as_scalar(self.momentum, "momentum", low=0.0, high=1.0)
        as_scalar(self.validation_fraction, "validation_fraction", low=0.0, high=1.0, high_open=True)
        as_scalar(self.beta_1, "beta_1", low=0.0, high=1.0, high_open=True)
        as_scalar(self.beta_2, "beta_2", low=0.0, high=1.0, high_open=True)
        as_scalar(self.epsilon, "epsilon", low=0.0, low_open=True)
        if not (isinstance(self.n_iter_no_change, float) and self.n_iter_no_change == np.inf):
            as_int(self.n_iter_no_change, "n_iter_no_change", low=1)
        if self.clip_norm is not None:
            as_scalar(self.clip_norm, "clip_norm", low=0.0, low_open=True)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping", "batch_norm"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        dropout = as_scalar(self.dropout, "dropout", low=0.0, high=1.0, high_open=True)
        if self.solver == "lbfgs" and (dropout > 0 or self.batch_norm):
            raise ValueError(f"solver='lbfgs' cannot train with dropout={self.dropout!r} and "
                             f"batch_norm={self.batch_norm!r}: L-BFGS minimizes one deterministic full-batch loss, "
                             "while Dropout draws random masks and BatchNorm1d normalizes with each batch's "
                             "statistics. Use a stochastic solver ('adam', 'sgd', 'adamw', 'rmsprop', "
                             "'adagrad') or dropout=0.0 and batch_norm=False")
        as_float_dtype(self.dtype)
        return self._hidden_units()

    def _penalty_rows(self, c):
        """(l1_rows, l2_rows): the kernel penalty of a batch of m rows is these over m."""
        l2 = 0.0 if self.solver == "adamw" else c * self.alpha / 2.0
        return c * float(self.l1), l2

    # ----- fit ----------------------------------------------------------------------------------
    def _fit(self, X, y, sample_weight, incremental):
        hidden = self._check_params()
        first_pass = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        dtype = as_float_dtype(self.dtype) if first_pass else self.model_.dtype
        X, y, targets, score_y = self._validate_input(X, y, incremental, reset=first_pass, dtype=dtype)
        w = self._row_weights(sample_weight, score_y, incremental)
        units = [X.shape[1]] + hidden + [targets[0].shape[1]]  # yf, or a (1, n_classes) dummy with labels
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(units, dtype)
        else:
            self._continue(units)
        if _train.architecture(self.model_)["dropout"] > 0 and (first_pass or not incremental):
            # Dropout's masks are keyed on (this seed, optimizer step, op, element); a fit makes a
            # fresh optimizer whose steps count from 1 again, so it draws a fresh seed too
            self.model_.dropout_seed = int(self._random_state.randint(2 ** 62, dtype=np.int64))
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, targets, kernel_weights(w, dtype))
        else:
            self._fit_stochastic(X, targets, score_y, w, incremental)
        if not np.all(np.isfinite(self.model_.params)):
            raise ValueError("Solver produced non-finite parameter weights. The input data may contain large "
                             "values and need to be preprocessed.")
        return self

    def _row_weights(self, sample_weight, y, incremental):
        """The training rows' weights, float64 (n,), or None (see fastgrad.sklearn._weights)."""
        return sample_weights(sample_weight, y.shape[0])

    def _initialize(self, units, dtype):
        loss, self.out_activation_ = self._output_spec()
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = units[-1]
        self.n_layers_ = len(units)
        self.model_ = _train.build_model(units, ACTIVATIONS[self.activation], loss, dtype, float(self.dropout),
                                         bool(self.batch_norm))
        _train.glorot_init(self.model_, self._random_state, 2.0 if self.activation == "logistic" else 6.0)
        self._loss_scale = _train.loss_scale(loss, units[-1])
        self._set_views()
        self._best_params = self.model_.params.copy()
        self._best_state = self.model_.state.copy()
        self.history_ = History(len(self.model_._diag_ops()))
        self.loss_curve_ = []
        self.validation_loss_curve_ = []
        self._no_improvement_count = 0
        if self.solver != "lbfgs" and self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None
        self.__dict__.pop("_learning_rate", None)  # the next stochastic fit makes a fresh optimizer

    def _continue(self, units):
        """Check that warm_start/partial_fit continue the same network; a changed ``dropout``
        rebuilds it around the same parameters, running statistics and optimizer."""
        model = self.model_
        arch = _train.architecture(model)
        hidden = len(units) > 2  # without hidden layers there is nothing to normalize or drop
        if arch["units"] != units or (hidden and arch["batch_norm"] != bool(self.batch_norm)):
            raise ValueError("warm_start/partial_fit need the architecture of the previous fit: layer widths "
                             f"{arch['units']} and batch_norm={arch['batch_norm']}, got {units} and "
                             f"batch_norm={self.batch_norm!r} (set warm_start=False, or fit a new estimator)")
        if hidden and arch["dropout"] != float(self.dropout):
            self.model_ = _train.rebuild(model, dropout=float(self.dropout))
            self._set_views()

    def _set_views(self):
        self.coefs_, self.intercepts_ = _train.weight_views(self.model_)

    def _fit_lbfgs(self, X, targets, w):
        c = self._loss_scale
        l1_rows, l2_rows = self._penalty_rows(c)
        self.n_iter_, self.loss_, curve = _train.fit_lbfgs(
            self.model_, X, *targets, c, l1_rows, l2_rows, int(self.max_iter), int(self.max_fun),
            float(self.tol), self.verbose, weights=w)
        self.loss_curve_ = curve
        self.best_loss_ = min(curve, default=self.loss_)
        for i, value in enumerate(curve):
            self.history_.record(i, {"loss": value}, None)

    def _fit_stochastic(self, X, targets, score_y, w, incremental):
        model = self.model_
        c = self._loss_scale
        if not incremental or not hasattr(self, "_learning_rate"):
            model.optimizer = _train.make_optimizer(self.solver, self, c)
            self._learning_rate = float(self.learning_rate_init)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X_val = val = None
        if self.early_stopping:
            idx_train, idx_val = train_test_split(np.arange(X.shape[0]), random_state=self._random_state,
                                                  test_size=self.validation_fraction,
                                                  stratify=self._stratify(score_y))
            if idx_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size "
                                 "of your dataset.")
            X_val, val = X[idx_val], (_subset(targets, idx_val), score_y[idx_val], _rows(w, idx_val, "validation"))
            X, targets, w = X[idx_train], _subset(targets, idx_train), _rows(w, idx_train, "training")
        w = kernel_weights(w, model.dtype)
        n = X.shape[0]
        batch_norm = _train.architecture(model)["batch_norm"]  # False without hidden layers
        if batch_norm:
            self._check_batch_norm_rows(n)
        batch_size = self._batch_size(n)
        lr_factor = 1.0 / c if self.solver == "sgd" else 1.0
        l1_rows, l2_rows = self._penalty_rows(c)
        clip = 0.0 if self.clip_norm is None else c * float(self.clip_norm)
        sample_idx = np.arange(n, dtype=np.int64)
        compile_for_fit(model, clip, l1=l1_rows, l2=l2_rows, l1_prox=False,  # a cold first fit: in two processes
                        announce=bool(self.verbose))
        self.n_iter_ = 0
        for _ in range(int(self.max_iter)):
            if self.shuffle:  # sklearn.utils.shuffle's draws (its resample: arange, then shuffle in place),
                order = np.arange(n)  # without its argument validation (1 ms per epoch, a third of digits' fit)
                self._random_state.shuffle(order)
                sample_idx = sample_idx[order]
            lr = self._learning_rate
            losses, sizes, failed = _train.run_epoch(model, X, *targets, sample_idx, batch_size, lr * lr_factor,
                                                     l1_rows, l2_rows, clip, weights=w,
                                                     fold_single=batch_norm)
            if failed is not None:
                raise ValueError(f"Solver produced a non-finite loss or gradient at epoch {self.n_iter_ + 1}, "
                                 f"batch {failed + 1}; the input data may contain large values and need to be "
                                 "preprocessed (the model keeps its last finite parameters).")
            self.n_iter_ += 1
            self.loss_ = float(np.sum(losses * sizes) / n / c)
            self.t_ += n
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
            logs = {"loss": self.loss_, "lr": lr}
            self._update_no_improvement_count(X_val, val, logs)
            self.history_.record(len(self.history_.epoch), logs, None)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                self._learning_rate = float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t
            if self._no_improvement_count > self.n_iter_no_change:
                if self._trigger_stopping():
                    break
                self._no_improvement_count = 0
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the optimization "
                              "hasn't converged yet." % self.max_iter, ConvergenceWarning)
        if self.early_stopping:
            model.params[:] = self._best_params
            model.state[:] = self._best_state

    def _check_batch_norm_rows(self, n):
        """BatchNorm1d normalizes each training batch with its mean and variance, which one row
        does not have: ``ValueError`` for one training row or ``batch_size=1`` (a last batch of
        one row is folded into the one before instead, see ``_train.batch_sizes``)."""
        why = "BatchNorm1d normalizes each batch with its mean and variance, and 1 sample has no variance"
        if n < 2:
            raise ValueError(f"batch_norm=True needs at least 2 training samples ({why}), got {n} sample"
                             + (" after the early stopping split" if self.early_stopping else ""))
        if not isinstance(self.batch_size, str) and self.batch_size == 1:
            raise ValueError(f"batch_norm=True needs batch_size >= 2 ({why}), got batch_size=1")

    def _batch_size(self, n):
        if isinstance(self.batch_size, str):
            return min(200, n)
        if self.batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
        return int(np.clip(self.batch_size, 1, n))

    def _update_no_improvement_count(self, X_val, val, logs):
        """scikit-learn's rule: count epochs whose validation score (early stopping) did not
        rise above the best by ``tol``, or whose training loss did not fall below the best by ``tol``.
        The validation score and loss are weighted by the validation rows' weights."""
        if self.early_stopping:
            score = self._score(X_val, val[1], sample_weight=val[2])
            self.validation_scores_.append(score)
            val_loss = self.model_.evaluate(X_val, _fit_targets(val[0]), batch_size=1024,
                                            sample_weight=val[2])["loss"]
            self.validation_loss_curve_.append(val_loss / self._loss_scale)
            logs.update(val_score=score, val_loss=self.validation_loss_curve_[-1])
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self.model_.params.copy()
                self._best_state = self.model_.state.copy()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _trigger_stopping(self):
        what = "Validation score did not improve" if self.early_stopping else "Training loss did not improve"
        msg = f"{what} more than tol={self.tol:f} for {self.n_iter_no_change} consecutive epochs."
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if self._learning_rate <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._learning_rate /= 5.0
        if self.verbose:
            print(msg + " Setting learning rate to %f" % self._learning_rate)
        return False

    def fit(self, X, y, sample_weight=None):
        """Fit the network to X (n_samples, n_features) and y; returns self.

        Stochastic solvers run up to ``max_iter`` epochs of mini-batches (stopping after
        ``n_iter_no_change`` epochs without a ``tol`` improvement of the training loss, or
        of the validation score with ``early_stopping``); ``lbfgs`` runs SciPy's L-BFGS-B on
        the whole data. ``warm_start=True`` continues from the previous solution (with a
        fresh optimizer, as scikit-learn).

        ``sample_weight`` (n_samples,) or a number: each batch minimises the weighted mean
        ``sum_i w_i l_i / sum_i w_i + alpha / (2 sum_i w_i) * sum ||W||^2`` over its rows
        (scikit-learn's MLP); weights must be finite, >= 0 and not all zero. The early
        stopping split carries the weights, and the validation score and loss are weighted.

        Raises ``ValueError``/``TypeError`` for invalid input (naming the argument) or a
        solver that diverged.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    # ----- prediction ---------------------------------------------------------------------------
    def _logits(self, X, check_input=True):
        """(the network's last-layer outputs in the model dtype, X's float dtype)."""
        check_is_fitted(self)
        if check_input:
            X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        out_dtype = X.dtype
        # evaluation mode whatever model_.train() says: no dropout, BatchNorm1d's running statistics
        return self.model_._predict(_kernel_array(X, self.model_.dtype), 1024, IDENTITY, EVAL), out_dtype

    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")

    def _score_with(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return float(score_function(y, y_pred, sample_weight=sample_weight))

    # ----- pickling: the model as its architecture and arrays, never Sequential's own pickle ---------
    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        model = state.pop("model_", None)
        state.pop("coefs_", None)
        state.pop("intercepts_", None)
        if model is not None:
            state["_model_state"] = _train.model_state(model)
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved = state.pop("_model_state", None)
        super().__setstate__(state)
        if saved is not None:
            self.model_ = _train.model_from_state(saved)
            self._set_views()


def _subset(targets, idx):
    yf, yl, use_labels = targets
    return (yf if use_labels else yf[idx], yl[idx] if use_labels else yl, use_labels)


def _rows(w, idx, part):
    """The weights of rows ``idx`` of the early-stopping split (None stays None); ``ValueError``
    if they are all zero."""
    if w is None:
        return None
    w = w[idx]
    if not np.any(w > 0):
        raise ValueError(f"sample_weight (times class_weight) is zero on every row of the {part} part of the "
                         "early stopping split; change random_state or validation_fraction")
    return w


def _fit_targets(targets):
    """The (X, y) target argument Sequential.evaluate takes for these kernel targets."""
    yf, yl, use_labels = targets
    return yl if use_labels else yf
