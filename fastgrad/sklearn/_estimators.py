"""MLPClassifier and MLPRegressor: scikit-learn's multi-layer perceptrons trained by fastgrad."""
from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, check_classification_targets, type_of_target
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import column_or_1d, validate_data

from fastgrad.sklearn._base import BaseMLP, _kernel_array
from fastgrad.sklearn._weights import check_class_weight, class_weighted

_COMMON_PARAMS = """
    Parameters (scikit-learn's MLP names and defaults, plus fastgrad's own)
    ----------------------------------------------------------------------
    hidden_layer_sizes : int or sequence of int, default=(100,)
    activation : {"relu", "logistic", "tanh", "identity"} or a fastgrad elementwise activation
        ("sigmoid", "leaky_relu", "elu", "gelu", "softplus", "silu"), default="relu"
    solver : {"adam", "sgd", "adamw", "rmsprop", "adagrad", "lbfgs"}, default="adam"
    alpha : float, default=1e-4
        L2 strength with scikit-learn's scaling: a batch of m rows minimises
        ``loss + alpha / (2 m) * sum ||W||^2`` (weights only, not biases); for ``adamw`` it
        is the decoupled weight decay ``p <- p (1 - lr alpha)`` instead.
    batch_size : int or "auto", default="auto" (= min(200, n_samples))
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant" (sgd only)
    learning_rate_init, power_t, max_iter (epochs; L-BFGS iterations), shuffle, random_state,
    tol, verbose, warm_start, momentum, nesterovs_momentum, early_stopping,
    validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun
        As in scikit-learn's MLP.
    dtype : "float32" or "float64", default="float32"
        The precision of the network and its training; outputs follow X's float dtype.
    clip_norm : float or None, default=None
        Rescale each batch gradient of the objective to at most this L2 norm.
    l1 : float, default=0.0
        L1 strength, scaled as alpha: ``+ l1 / m * sum |W|`` per batch of m rows.
    dropout : float in [0, 1), default=0.0
        A ``Dropout(dropout)`` after each hidden layer's activation (inverted dropout, active in
        training only); its masks are reproducible given ``random_state``.
    batch_norm : bool, default=False
        Each hidden layer becomes Dense (no bias) -> ``BatchNorm1d`` -> activation (PyTorch's
        defaults: eps 1e-5, momentum 0.1): batch statistics in training, running statistics in
        ``predict``. ``intercepts_[i]`` of a hidden layer is then the BatchNorm1d's bias (beta).
        Needs 2+ rows per batch (a last batch of one row joins the batch before).
    ``dropout`` and ``batch_norm`` need a stochastic solver (``ValueError`` with ``lbfgs``).

    Fitted attributes: scikit-learn's (``n_features_in_``, ``feature_names_in_``, ``n_iter_``,
    ``t_``, ``loss_``, ``best_loss_``, ``loss_curve_``, ``validation_scores_``,
    ``best_validation_score_``, ``coefs_``/``intercepts_`` (views of the flat ``model_.params``),
    ``n_layers_``, ``n_outputs_``, ``out_activation_``) plus ``model_`` (the
    :class:`fastgrad.Sequential`), ``history_`` (a :class:`fastgrad.callbacks.History` with
    ``loss``, ``lr`` and, with early stopping, ``val_score`` and ``val_loss`` per epoch) and
    ``validation_loss_curve_`` (the validation loss per epoch with early stopping).
"""


def _partial_fit_available(est):
    if est.solver == "lbfgs":
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. {est.solver} is not "
                             "stochastic.")
    return True


class MLPClassifier(ClassifierMixin, BaseMLP):
    __doc__ = """Multi-layer perceptron classifier trained in fastgrad's compiled loop.

    Multiclass y: softmax output and cross-entropy; binary y: one logistic output;
    multi-label y (a 2-D 0/1 indicator): one logistic output per label.
    """ + _COMMON_PARAMS + """    class_weight : dict {label: weight}, "balanced" or None, default=None
        Multiplies each row's ``sample_weight`` by its class's weight (labels not named weigh
        1); ``"balanced"``: ``sum(w) / (n_classes * sum of w over the class's rows)``
        (``n_samples / (n_classes * bincount(y))`` without sample_weight), from the y of each
        ``fit`` call; not supported by ``partial_fit`` (``ValueError``: pass a dict computed
        once). Single-label y only. scikit-learn's ``compute_class_weight`` semantics.

    ``classes_``: the class labels.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype="float32", clip_norm=None, l1=0.0, dropout=0.0, batch_norm=False, class_weight=None):
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
            max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1,
            beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, dtype=dtype,
            clip_norm=clip_norm, l1=l1, dropout=dropout, batch_norm=batch_norm)
        self.class_weight = class_weight

    def _output_spec(self):
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax_cross_entropy", "softmax"
        return "binary_cross_entropy", "logistic"

    def _validate_input(self, X, y, incremental, reset, dtype):
        X, y = validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32), reset=reset)
        X = _kernel_array(X, dtype)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start and not incremental:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {classes}.")
        Y = self._label_binarizer.transform(y)
        if self._label_binarizer.y_type_ == "multiclass":
            labels = np.ascontiguousarray(np.argmax(Y, axis=1), dtype=np.int64)
            targets = (np.zeros((1, Y.shape[1]), dtype), labels, True)
        else:
            targets = (_kernel_array(Y, dtype), np.zeros(1, np.int64), False)
        return X, y, targets, y

    def _stratify(self, y):
        return y if y.ndim == 1 else None

    def _check_params(self):
        check_class_weight(self.class_weight)
        return super()._check_params()

    def _row_weights(self, sample_weight, y, incremental):
        w = super()._row_weights(sample_weight, y, incremental)
        if self.class_weight is not None and y.ndim != 1:
            raise ValueError("class_weight needs single-label y (one label per row); got a multi-label indicator "
                             f"y of shape {y.shape}: weight the rows with sample_weight instead")
        return class_weighted(self.class_weight, self.classes_, y, w, incremental)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), continuing the previous state (optimizer included).

        ``classes`` (every label that will ever be seen) is required on the first call;
        later calls raise ``ValueError`` for labels not in ``classes_``. ``sample_weight``
        and a dict ``class_weight`` weight the rows as in :meth:`fit` (pass ``sample_weight``
        by keyword: scikit-learn's MLP puts it before ``classes``, its SGDClassifier after).
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight, incremental=True)

    partial_fit = available_if(_partial_fit_available)(partial_fit)

    def decision_function(self, X):
        """The network's output logits z for X: shape (n,) for binary y, else (n, n_outputs_);
        ``predict`` is ``classes_[z > 0]`` (binary) or ``classes_[argmax z]`` (multiclass)."""
        z, out_dtype = self._logits(X)
        z = z.astype(out_dtype, copy=False)
        return z.ravel() if self.n_outputs_ == 1 else z

    def predict(self, X):
        """Class labels (n,), or a 0/1 indicator (n, n_labels) for multi-label y."""
        return self._predict(X)

    def _predict(self, X, check_input=True):
        z, _ = self._logits(X, check_input)
        if self._label_binarizer.y_type_ == "multiclass":
            return self.classes_[np.argmax(z, axis=1)]
        if self._label_binarizer.y_type_.startswith("multilabel"):
            return (z > 0).astype(int)
        if len(self.classes_) == 1:
            return np.repeat(self.classes_, z.shape[0])
        return self.classes_[(z[:, 0] > 0).astype(np.intp)]

    def predict_proba(self, X):
        """Class probabilities (n, n_classes): softmax of the logits (multiclass), [1 - p, p] with
        p = sigmoid(z) (binary), or one sigmoid per label (multi-label). Computed in float64,
        returned in X's float dtype."""
        z, out_dtype = self._logits(X)
        z = z.astype(np.float64)
        if self.out_activation_ == "softmax":
            return softmax(z, axis=1).astype(out_dtype, copy=False)
        p = expit(z)
        if self.n_outputs_ == 1:
            p = np.hstack([1.0 - p, p])
        return p.astype(out_dtype, copy=False)

    def predict_log_proba(self, X):
        """log of :meth:`predict_proba`, computed from the logits without underflow."""
        z, out_dtype = self._logits(X)
        z = z.astype(np.float64)
        if self.out_activation_ == "softmax":
            return log_softmax(z, axis=1).astype(out_dtype, copy=False)
        out = log_expit(z)
        if self.n_outputs_ == 1:
            out = np.hstack([log_expit(-z), out])
        return out.astype(out_dtype, copy=False)

    def _score(self, X, y, sample_weight=None):
        return self._score_with(X, y, sample_weight, accuracy_score)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    __doc__ = """Multi-layer perceptron regressor (squared error, identity output) trained in
    fastgrad's compiled loop; y may have several columns (multi-output regression).

    The objective of a batch is scikit-learn's: sum over outputs of the row mean of
    (f - y)^2 / 2, plus the penalties; ``loss_`` reports it.
    """ + _COMMON_PARAMS

    def _output_spec(self):
        return "mse", "identity"

    def _validate_input(self, X, y, incremental, reset, dtype):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=(np.float64, np.float32),
                             reset=reset)
        X = _kernel_array(X, dtype)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = y.reshape(y.shape[0], -1)
        return X, y, (_kernel_array(Y, dtype), np.zeros(1, np.int64), False), y

    def _stratify(self, y):
        return None

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing the previous state (optimizer included);
        ``sample_weight`` as in :meth:`fit`."""
        return self._fit(X, y, sample_weight, incremental=True)

    partial_fit = available_if(_partial_fit_available)(partial_fit)

    def predict(self, X):
        """Predictions (n,) for one output, (n, n_outputs_) for several, in X's float dtype."""
        return self._predict(X)

    def _predict(self, X, check_input=True):
        z, out_dtype = self._logits(X, check_input)
        z = z.astype(out_dtype, copy=False)
        return z.ravel() if z.shape[1] == 1 else z

    def _score(self, X, y, sample_weight=None):
        return self._score_with(X, y, sample_weight, r2_score)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
