"""Sequential: a network of layers on one flat parameter buffer, trained in compiled code."""
from __future__ import annotations

import threading
import weakref

import numpy as np

from fastgrad import init as _init
from fastgrad._checks import as_float_dtype, as_int, assign_into, check_choice
from fastgrad._threads import TrainingLock, blas_phase
from fastgrad._names import CLASSIFICATION, FUSED_OUTPUT, LOSS_ALIASES, LOSSES, loss_name, optimizer_by_name
from fastgrad._summary import summary_text
from fastgrad.kernels.activations import IDENTITY, SIGMOID, SOFTMAX
from fastgrad.kernels.gemm import MACHINE_CORES
from fastgrad.kernels.program import (ACT, ACTIVATION, BATCH_NORM, DENSE, DROPOUT, EVAL, N_IN, N_OUT, OP, P_HI,
                                      P_LO, S_OFF, TRAIN, Data, Net, Objective, work_buffers)
from fastgrad.layers import Dense, Layer
from fastgrad._model_data import ModelData
from fastgrad._model_options import CHECKED_ATTRIBUTES, ModelOptions

__all__ = ("Sequential", "LOSSES", "LOSS_ALIASES", "CLASSIFICATION", "HESSIAN_MAX_PARAMS")
HESSIAN_MAX_PARAMS = 2000
# what predict applies to the logits, by loss (Keras's probabilities)
_PREDICT_POST = {"softmax_cross_entropy": SOFTMAX, "binary_cross_entropy": SIGMOID}


# Which model each optimizer object belongs to (weakly: neither is kept alive by this table).
_OPTIMIZER_OWNERS = weakref.WeakKeyDictionary()


def _backend(name):
    check_choice(name, "backend", ("compiled", "reference"))
    if name == "compiled":
        from fastgrad.kernels import train
    else:
        from fastgrad.reference import train
    return train


class Sequential(ModelOptions, ModelData):
    """A stack of layers with a loss and an optimizer, compiled to a program of ops.

    ``layers``: :class:`~fastgrad.Dense`, :class:`~fastgrad.Activation`,
    :class:`~fastgrad.Dropout`, :class:`~fastgrad.LayerNorm`, :class:`~fastgrad.BatchNorm1d`
    and :class:`~fastgrad.Residual` blocks of them, in order. Each layer's input width comes
    from the layer before; ``n_in`` gives the first layer's when it does not say
    (``Dense(32)``, ``Dropout``, ``Activation``). Widths that do not chain raise ``ValueError``.

    ``loss`` (required, as in Keras and PyTorch): ``mse``, ``mae``, ``huber`` (``huber_delta``),
    ``binary_cross_entropy`` (the last layer outputs logits; the loss is fused with the sigmoid)
    or ``softmax_cross_entropy`` (logits; integer labels or class probabilities); Keras's and
    PyTorch's names are accepted for them (``mean_squared_error``, ``mean_absolute_error``,
    ``huber_loss``, ``binary_crossentropy``, ``categorical_crossentropy``,
    ``sparse_categorical_crossentropy``, ``cross_entropy``, ``mse_loss``, ``l1_loss``,
    ``binary_cross_entropy_with_logits``) and stored as the names above. A last
    layer that applies softmax (sigmoid) before the matching cross-entropy, Keras's spelling
    (``Dense(10, activation="softmax")``), is trained on its logits with the fused loss and
    ``predict`` returns the probabilities: the same trajectory as the logits spelling.
    ``metrics``: names among ``accuracy``, ``auc``, ``precision``, ``recall`` (classification
    losses) and ``r2``, ``mae``, ``mse`` (regression losses), as defined in :mod:`fastgrad.metrics`
    (scikit-learn's definitions); ``evaluate`` returns them and ``fit`` logs them (``val_``
    too). ``optimizer``: a :mod:`fastgrad.optim` optimizer, or the lower-case name of one with its
    default settings (``"adam"``, ``"adamw"``, ``"sgd"``, ``"rmsprop"``, ``"adagrad"``,
    ``"lbfgs"``); default ``Adam()``. With :class:`~fastgrad.optim.LBFGS`, ``fit`` minimizes the
    full-batch loss (one ``LBFGS.step`` per epoch, scikit-learn's MLP solver for small data). ``l1``/``l2``
    add ``l1 * sum|W| + l2 * sum W^2`` over every weight (not biases) to the loss, as
    Keras does; ``l1_mode="proximal"`` applies l1 by soft-thresholding after each update
    instead of by its subgradient, so that weights reach exactly 0 (:attr:`l1_mode`). ``dtype``: float32 (default) or float64. ``seed``: seeds the one RNG that
    initializes the weights and shuffles the batches. ``backend="reference"`` runs the
    same math in NumPy (:mod:`fastgrad.reference.train`), for tests and as a baseline.

    ``params`` is ONE flat, contiguous array holding every layer's W (row-major) then b (a
    norm's weight then bias), in layer order; ``grads`` has the same layout; ``layer.W``,
    ``layer.b`` (``layer.weight``, ``layer.bias``) are views. ``state`` holds the
    non-trainable values (BatchNorm1d's running statistics; ``layer.running_mean`` views).
    Modes: ``fit``/``train_step`` train (Dropout active, BatchNorm1d on batch statistics,
    running statistics updated); ``predict``/``evaluate`` evaluate; ``forward`` and
    ``loss_and_grad`` follow :meth:`train`/:meth:`eval` (evaluation by default).
    Assigning ``model.params = a`` (or ``grads``, ``state``, ``layer.W``, ``layer.b``) copies ``a`` into
    the buffer, so views stay views; ``a`` must be a NumPy array of exactly the buffer's
    shape and dtype, else ``ValueError`` naming the attribute.

    Threads: ``predict``, ``forward``, ``evaluate`` and ``loss_and_grad`` may run on one
    model from several threads at once (each thread has its own work buffers); ``fit`` and
    ``train_step`` while the model trains in another thread raise ``RuntimeError``.
    Models pickle and deep-copy (the copy continues training bit-identically).
    """

    def __init__(self, layers, loss=None, optimizer=None, l1=0.0, l2=0.0, dtype="float32", seed=None,
                 backend="compiled", huber_delta=1.0, n_in=None, metrics=None, l1_mode="subgradient"):
        from fastgrad.optim import LBFGS, Adam, Optimizer
        layers = list(layers) if isinstance(layers, (list, tuple)) else None
        if not layers or not all(isinstance(layer, Layer) for layer in layers):
            raise ValueError("layers must be a non-empty list of fastgrad layers (Dense, Activation, Dropout, "
                             "LayerNorm, BatchNorm1d, Residual)")
        leaves = [leaf for layer in layers for leaf in layer._leaves()]
        if len(set(map(id, leaves))) != len(leaves):
            raise ValueError("a layer appears twice in the model; create a new layer for each place")
        for leaf in leaves:
            if leaf._model is not None and leaf._model is not self:
                raise ValueError(f"the {type(leaf).__name__} layer {leaf!r} already belongs to another model; "
                                 "create a new layer")
        self.loss = loss_name(loss)
        self.metrics = metrics
        if isinstance(optimizer, str):
            optimizer = optimizer_by_name(optimizer)
        self.optimizer = Adam() if optimizer is None else optimizer
        if not isinstance(self.optimizer, (Optimizer, LBFGS)):
            raise TypeError(f"optimizer must be a fastgrad.optim optimizer, got {type(self.optimizer).__name__}")
        owner = _OPTIMIZER_OWNERS.get(self.optimizer)
        if owner is not None and owner() is not None:
            raise ValueError("this optimizer already belongs to another model (its state is laid out on that "
                             "model's parameters); give each model its own optimizer")
        _OPTIMIZER_OWNERS[self.optimizer] = weakref.ref(self)
        self.l1 = l1
        self.l2 = l2
        self.l1_mode = l1_mode
        self.huber_delta = huber_delta
        self.dtype = as_float_dtype(dtype)
        self.backend = backend
        self._train = _backend(backend)
        self.seed = None if seed is None else as_int(seed, "seed", low=0)
        self.rng = np.random.default_rng(self.seed)
        # Dropout's key: drawn from fresh entropy (not from rng, whose stream the shuffles use).
        self.dropout_seed = (self.seed if self.seed is not None else np.random.SeedSequence().entropy) % 2 ** 62
        self.layers = layers
        from fastgrad._program import build_program
        self.program, self.op_params, built = build_program(layers, None if n_in is None else
                                                           as_int(n_in, "n_in", low=1), self.dtype)
        self._fuse_output_activation()
        from fastgrad.custom import check_model_functions
        check_model_functions(self)
        if isinstance(self.optimizer, LBFGS) and np.any(np.isin(self.program[:, OP], (DROPOUT, BATCH_NORM))):
            raise ValueError("LBFGS minimizes one deterministic full-batch loss: a model with Dropout or "
                             "BatchNorm1d (random masks, batch statistics) needs a mini-batch optimizer")
        for leaf in leaves:
            leaf._bind(self, leaf._op)
        self._params = np.zeros(built.n_params, dtype=self.dtype)
        self._grads = np.zeros(built.n_params, dtype=self.dtype)
        self._state = np.zeros(built.n_state, dtype=self.dtype)
        for off, size, fill in built.param_fills:
            self._params[off:off + size] = fill
        for off, size, fill in built.state_fills:
            self._state[off:off + size] = fill
        for leaf in leaves:
            if isinstance(leaf, Dense):
                leaf.W[...] = _init.INITIALIZERS[leaf.initializer]((leaf.n_in, leaf.n_out), rng=self.rng,
                                                                   dtype=self.dtype)
        self.training = False
        self.epochs_done = 0
        self.stop_training = False
        self._init_runtime()

    def _fuse_output_activation(self):
        """A last op (Dense or Activation) applying softmax before ``softmax_cross_entropy``, or
        sigmoid before ``binary_cross_entropy``, is Keras's way to write a classifier; the fused
        losses take logits, so that activation is dropped from the program: training uses the
        stable fused form on the logits and ``predict`` returns the probabilities (as Keras,
        which recovers the logits in the same case). Without this the activation would be
        applied twice, and such a model would stall (a softmax output: loss stuck near 1.46,
        outputs near 1/k)."""
        fused = FUSED_OUTPUT.get(self.loss)
        last = self.program[-1]
        if fused is not None and last[OP] in (DENSE, ACTIVATION) and last[ACT] == fused[1]:
            self.program[-1, ACT] = IDENTITY

    def _init_runtime(self):
        """What is per process and per thread, never pickled: the backend's training functions
        (specialized with a user's Loss or ActivationFn, see fastgrad/custom.py), each thread's
        work buffers, the lock that keeps one fit at a time."""
        from fastgrad.custom import model_functions, training_functions
        self._train = _backend(self.backend)
        loss_fn, act_fn = model_functions(self)
        if loss_fn is not None or act_fn is not None:
            self._train = training_functions(self.backend, loss_fn, act_fn)
        self._local = threading.local()
        self._net_held = None   # the Net with this process's kernel addresses: see _net
        self._loss_fn = None    # (loss code, its compiled batch loss's address): see _loss_address
        # fixed by the program: whether a BatchNorm1d normalizes with its input's statistics in
        # evaluation (no running statistics), read by every evaluation pass
        norms = self.program[self.program[:, OP] == BATCH_NORM]
        self._input_stats_norm = bool(np.any(norms[:, S_OFF] < 0))
        self._param_ops = np.flatnonzero(self.program[:, P_HI] > self.program[:, P_LO])
        self._training = threading.Lock()

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("_train", "_local", "_training", "_input_stats_norm", "_param_ops", "_net_held", "_loss_fn"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        state = dict(state)
        for name in CHECKED_ATTRIBUTES:  # pickled before these became checked properties
            if name in state:
                state["_" + name] = state.pop(name)
        state.setdefault("_l1_mode", "subgradient")
        self.__dict__.update(state)
        self._init_runtime()
        _OPTIMIZER_OWNERS[self.optimizer] = weakref.ref(self)   # the copy owns the copy of its optimizer

    # ----- the flat buffers -----------------------------------------------------------------
    @property
    def params(self) -> np.ndarray:
        """Every trainable value, one flat C-contiguous array (see the class doc)."""
        return self._params

    @params.setter
    def params(self, value):
        assign_into(self._params, value, "params")

    @property
    def grads(self) -> np.ndarray:
        """The gradient of the last ``loss_and_grad``/training batch, laid out as ``params``."""
        return self._grads

    @grads.setter
    def grads(self, value):
        assign_into(self._grads, value, "grads")

    @property
    def state(self) -> np.ndarray:
        """Every non-trainable value (BatchNorm1d's running statistics), one flat array in the
        model's dtype (empty when no layer has any); assigning copies into it, as ``params``."""
        return self._state

    @state.setter
    def state(self, value):
        assign_into(self._state, value, "state")

    # ----- structure ------------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        return int(self.params.size)

    def count_params(self) -> int:
        """The number of trainable values (Keras's ``count_params``)."""
        return self.n_params

    @property
    def n_in(self) -> int:
        return int(self.program[0, N_IN])

    @property
    def n_out(self) -> int:
        return int(self.program[-1, N_OUT])

    def _weight_views(self):
        """Views of every layer's arrays in Keras's order: per layer in program order, W and b
        (Dense), weight and bias (norms), then running mean and variance (BatchNorm1d)."""
        views = []
        for layer in self.layers:
            for leaf in layer._leaves():
                for name in ("W", "b", "weight", "bias", "running_mean", "running_var"):
                    view = getattr(leaf, name) if hasattr(type(leaf), name) else None
                    if view is not None:
                        views.append(view)
        return views

    def get_weights(self) -> list:
        """Copies of every layer's arrays, as Keras's ``get_weights``: per layer, in order, W then b
        (Dense), weight then bias (LayerNorm, BatchNorm1d), then running mean and variance
        (BatchNorm1d's non-trainable state)."""
        return [view.copy() for view in self._weight_views()]

    def set_weights(self, weights) -> None:
        """Copy ``weights`` (a list as :meth:`get_weights` returns) into the model's buffers, after
        checking the count and each array's shape and dtype (``ValueError`` naming the index);
        nothing is copied unless all are valid."""
        views = self._weight_views()
        if not isinstance(weights, (list, tuple)) or len(weights) != len(views):
            raise ValueError(f"weights must be a list of {len(views)} arrays (as get_weights returns), got "
                             f"{type(weights).__name__}" + (f" of length {len(weights)}"
                                                            if isinstance(weights, (list, tuple)) else ""))
        arrays = []
        for i, (value, view) in enumerate(zip(weights, views)):
            arr = np.asarray(value)
            if arr.shape != view.shape:
                raise ValueError(f"weights[{i}] must have shape {view.shape}, got {arr.shape}")
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"weights[{i}] must hold real numbers, got dtype {arr.dtype}")
            arrays.append(arr)
        for arr, view in zip(arrays, views):
            view[...] = arr

    def _net(self) -> Net:
        """The model's structure as the training functions take it, with the compiled backend's
        kernel addresses (kernels/dispatch.py, compiling what this process lacks; zeros for
        the NumPy twin). Kept per process: the program is fixed when the model is built, and
        only ``dropout_seed`` may change (``load``)."""
        held = self._net_held
        if held is not None and held.seed == self.dropout_seed:
            return held
        if self.backend == "compiled":
            from fastgrad.kernels.dispatch import op_addresses
            kernels = op_addresses(self.program, self.dtype, getattr(self._train, "custom_activation", None))
        else:
            kernels = np.zeros((self.program.shape[0], 4), np.int64)
        self._net_held = Net(self.program, self.op_params, self._state, self.dropout_seed, MACHINE_CORES, kernels)
        return self._net_held

    def _objective(self, l1=None, l2=None, l1_prox=None) -> Objective:
        """The loss and penalties the kernels take, with the addresses of their compiled
        functions; ``l1``/``l2``/``l1_prox`` replace the model's (scikit-learn's per-batch
        penalty scaling)."""
        code = self._loss_code
        l1 = float(self.l1 if l1 is None else l1)
        l2 = float(self.l2 if l2 is None else l2)
        l1_prox = self.l1_mode == "proximal" if l1_prox is None else bool(l1_prox)
        penalty_fns = (0, 0)
        if self.backend == "compiled" and (l1 or l2):
            from fastgrad.kernels.dispatch import penalty_addresses
            penalty_fns = penalty_addresses(l1, l2, l1_prox, self.dtype)
        return Objective(code, self._loss_param, l1, l2, l1_prox, self._loss_address(code), *penalty_fns)

    def _loss_address(self, code) -> int:
        """The compiled batch loss's address for loss ``code`` (kernels/dispatch.py; 0 for the
        NumPy twin), kept per process and loss."""
        if self.backend != "compiled":
            return 0
        held = self._loss_fn
        if held is not None and held[0] == code:
            return held[1]
        from fastgrad.kernels.dispatch import loss_address
        self._loss_fn = (code, loss_address(code, self.dtype, getattr(self._train, "custom_loss", None)))
        return self._loss_fn[1]

    def _post_arg(self, post):
        """``predict_batches``' post-processing: the activation code for the NumPy twin, its
        compiled forward's address for the compiled backend (0, IDENTITY's code, for none)."""
        if self.backend != "compiled" or post == IDENTITY:
            return post
        from fastgrad.kernels.dispatch import activation_address
        return activation_address(post, self.dtype)

    def _diag_ops(self):
        """Indices of the ops with parameters: the rows of ``history.diagnostics``."""
        return self._param_ops

    def train(self, mode=True):
        """Training mode for :meth:`forward` and :meth:`loss_and_grad` (Dropout active,
        BatchNorm1d on batch statistics), as ``torch.nn.Module.train``; returns the model.
        ``fit``/``train_step`` always train and ``predict``/``evaluate`` always evaluate."""
        from fastgrad.optim._validate import flag
        self.training = flag(mode, "mode")
        return self

    def eval(self):
        """Evaluation mode for :meth:`forward` and :meth:`loss_and_grad` (the default)."""
        return self.train(False)

    @property
    def _mode(self):
        return TRAIN if self.training else EVAL

    def _check_batch_stats(self, sizes, where, remedy="choose a batch_size that leaves no batch of 1 row"):
        """``ValueError`` when a batch of one row meets a BatchNorm1d using batch statistics
        (no variance)."""
        if 1 in sizes and np.any(self.program[:, OP] == BATCH_NORM):
            raise ValueError(f"{where} would normalize a batch of 1 row with BatchNorm1d, which has no batch "
                             f"variance (PyTorch raises too); {remedy}")

    def _work(self, batch):
        """This thread's work buffers (and a parameter-sized scratch) for batches of up to ``batch``
        rows: one set per thread, so that several threads can predict on one model at once, sized
        for the largest batch the thread has asked for (a smaller batch uses the leading rows of
        each block). Memory stays bounded by the largest call, however many sizes are used (a set
        per size grew without bound: ``predict`` on inputs of 1..1000 rows held 1000 sets, 2 GB)."""
        held = getattr(self._local, "work", None)
        if held is None or held[0] < batch:
            held = self._local.work = (batch, work_buffers(self.program, batch, self.n_in, self.n_out, self.n_params,
                                                           self.dtype), np.empty(self.n_params, self.dtype))
        return held[1], held[2]

    # ----- inference -------------------------------------------------------------------------
    def forward(self, X, batch_size=1024):
        """The last layer's raw outputs (logits for the classification losses), shape (n, n_out), in
        the model's mode (:meth:`eval`, the default, or :meth:`train`; in training mode the whole
        of X is one batch, as ``module(X)`` in PyTorch, so BatchNorm1d uses X's statistics, and
        Dropout's mask is that of the next optimizer step; running statistics are not updated)."""
        if self.training:
            X = self._inputs(X)
            self._check_batch_stats((X.shape[0],), "forward in training mode", "pass at least 2 rows")
            batch_size = X.shape[0]
        return self._predict(X, batch_size, IDENTITY, self._mode, "forward")

    def predict(self, X, batch_size=1024):
        """Outputs for X (n, n_in), in evaluation mode: class probabilities for softmax_cross_entropy
        (softmax of the logits), probabilities for binary_cross_entropy (sigmoid), raw outputs
        otherwise."""
        return self._predict(X, batch_size, _PREDICT_POST.get(self.loss, IDENTITY), EVAL, "predict")

    def __call__(self, X):
        """``model(X)``: the same as :meth:`predict` (Keras's call on data)."""
        return self.predict(X)

    def _eval_batch(self, batch_size, n, where):
        """Rows per chunk of an evaluation pass over n rows: ``batch_size`` (at most n), or all n
        at once when a BatchNorm1d without running statistics normalizes with the statistics of
        its input (as ``module(X)`` in PyTorch: chunks would each get their own)."""
        batch = min(as_int(batch_size, "batch_size", low=1), n)
        if self._input_stats_norm:
            if n == 1:
                raise ValueError(f"{where} got X of 1 row: a BatchNorm1d without running statistics normalizes "
                                 "with the statistics of its input, which one row does not have (no variance, as "
                                 "PyTorch raises); pass at least 2 rows")
            return n
        return batch

    def _predict(self, X, batch_size, post, mode, where="predict"):
        X = self._inputs(X)
        batch = self._eval_batch(batch_size, X.shape[0], where)
        work, _ = self._work(batch)
        out = np.empty((X.shape[0], self.n_out), self.dtype)
        with blas_phase():
            self._train.predict_batches(self.params, self._net(), X, batch, work, out, self._post_arg(post), mode,
                                        self.optimizer.step_count + 1)
        return out

    def evaluate(self, X, y, batch_size=1024, sample_weight=None, verbose=0) -> dict:
        """{"loss": mean loss over X (plus the l1/l2 penalty, as in training), "accuracy": ...}
        (accuracy only for the classification losses), and the model's ``metrics``
        (:mod:`fastgrad.metrics`; unweighted).

        ``sample_weight`` (n,) (float or int, finite, >= 0, not all zero): the loss is the
        weighted mean ``sum_i w_i l_i / sum_i w_i`` (``l_i``: row i's loss averaged over its
        outputs), PyTorch's class-weight convention; accuracy stays the unweighted fraction.
        ``verbose`` >= 1 (or True) also prints the figures on one line, as Keras's ``evaluate``.
        Raises ``ValueError``/``TypeError`` naming the bad argument."""
        X, yf, yl, use_labels = self._data(X, y)
        w = self._weights(sample_weight, None, yf, yl, use_labels, X.shape[0])
        batch = self._eval_batch(batch_size, X.shape[0], "evaluate")
        work, _ = self._work(batch)
        sums = np.zeros(2)
        with blas_phase():
            self._train.evaluate_batches(self.params, self._net(), Data(X, yf, yl, use_labels, self._kernel_weights(w)),
                                         self._objective(), batch, work, sums)
        total = X.shape[0] if w is None else float(np.sum(w, dtype=np.float64))
        logs = {"loss": float(sums[0] / total + self._penalty())}
        accuracy = self._accuracy(int(sums[1]), X.shape[0])
        if accuracy is not None:
            logs["accuracy"] = accuracy
        logs.update(self._metric_logs(X, yf, yl, use_labels, batch_size))
        if as_int(int(verbose) if isinstance(verbose, bool) else verbose, "verbose", low=0):
            from fastgrad.callbacks import format_logs
            print(format_logs(logs))
        return logs

    def _metric_logs(self, X, yf, yl, use_labels, batch_size=1024) -> dict:
        """The model's ``metrics`` other than accuracy (which the compiled pass counts) on
        validated (X, y): one evaluation-mode ``predict`` pass, then :mod:`fastgrad.metrics`."""
        names = [m for m in self.metrics if m != "accuracy"]
        if not names:
            return {}
        from fastgrad.metrics import compute
        return compute(names, self.predict(X, batch_size), yf, yl, use_labels, self.loss)

    def _penalty(self, grads=None):
        """The l1/l2 penalty of the parameters; with ``grads``, its gradient is added there (l1's
        only with ``l1_mode="subgradient"``, as in training)."""
        if self.l1 == 0 and self.l2 == 0:
            return 0.0
        net = self._net()
        if grads is None:
            return float(self._train.penalty(self.params, self.grads, net, self.l1, self.l2, False))
        l1_grad = 0.0 if self.l1_mode == "proximal" else self.l1
        return float(self._train.penalty(self.params, grads, net, l1_grad, self.l2, True)
                     + self._train.penalty(self.params, grads, net, self.l1 - l1_grad, 0.0, False))

    def _proximal_l1(self, lr):
        """After an update outside the compiled loop: the proximal step of ``lr * l1`` when
        ``l1_mode="proximal"`` (what :func:`~fastgrad.kernels.train.train_epoch` does after each)."""
        if self.l1_mode == "proximal" and self.l1 > 0:
            self._train.proximal_l1(self.params, self._net(), self.dtype.type(lr * self.l1))

    # ----- gradients and steps ---------------------------------------------------------------
    def _batch_grad(self, X, yf, yl, use_labels, w=None):
        """Loss of (X, y) as one validated batch; its gradient is left in ``self.grads``
        (single-threaded callers such as scikit-learn's L-BFGS loop)."""
        loss, grads = self._batch_loss_grad(X, yf, yl, use_labels, w=w)
        self._grads[:] = grads
        return loss

    def _batch_loss_grad(self, X, yf, yl, use_labels, params=None, w=None):
        """Loss of (X, y) as one validated batch at ``params`` (default: the model's), weighted
        by validated weights ``w`` unless None; the gradient is left in this thread's gradient
        buffer, which is returned with it."""
        work, grads = self._work(X.shape[0])
        if self.training:
            self._check_batch_stats((X.shape[0],), "loss_and_grad in training mode", "pass at least 2 rows")
        else:  # one batch: a BatchNorm1d without running statistics normalizes with X's own
            self._eval_batch(X.shape[0], X.shape[0], "loss_and_grad")
        with blas_phase():
            loss = float(self._train.loss_and_grad_batch(
                self.params if params is None else params, grads, self._net(), X, yf, yl, use_labels,
                self._kernel_weights(w), self._objective(), work, self._mode, self.optimizer.step_count + 1))
        return loss, grads

    def loss_and_grad(self, X, y, sample_weight=None):
        """(loss, grad) on the whole of (X, y) as one batch: the mean loss plus the penalty, and a
        copy of the flat gradient (penalty included), laid out as ``params``. The gradient is
        also copied into ``model.grads`` (the ``layer.grad_W`` views), unless the model is
        training in another thread. ``sample_weight`` (n,): the weighted mean
        ``sum_i w_i l_i / sum_i w_i`` instead (see :meth:`evaluate`)."""
        X, yf, yl, use_labels = self._data(X, y)
        w = self._weights(sample_weight, None, yf, yl, use_labels, X.shape[0])
        loss, grads = self._batch_loss_grad(X, yf, yl, use_labels, w=w)
        if self._training.acquire(blocking=False):
            try:
                self._grads[:] = grads
            finally:
                self._training.release()
        return loss, grads.copy()

    def train_step(self, X, y, clip_norm=None, sample_weight=None, class_weight=None) -> float:
        """One optimizer update on the batch (X, y); returns the batch loss (before the update).
        ``sample_weight`` (n,) and ``class_weight`` weight the loss as in :meth:`fit`
        (``sum_i w_i l_i / sum_i w_i``). Raises ``FloatingPointError`` when the loss or gradient is
        not finite (parameters untouched) or when the update made a parameter NaN or inf (the
        parameters before it are restored); ``ValueError``/``TypeError`` for bad weights."""
        from fastgrad.training import run_batches
        self._check_minibatch_optimizer("train_step")
        X, yf, yl, use_labels = self._data(X, y)
        w = self._weights(sample_weight, class_weight, yf, yl, use_labels, X.shape[0])
        with self.training_lock():
            result = run_batches(self, X, yf, yl, use_labels, np.arange(X.shape[0]), X.shape[0], clip_norm,
                                 diagnostics=False, weights=w)
        if result.failed is not None:
            raise FloatingPointError(result.failure("train_step"))
        return float(result.losses[0])

    def _check_minibatch_optimizer(self, where):
        from fastgrad.optim import LBFGS
        if isinstance(self.optimizer, LBFGS):
            raise TypeError(f"{where} makes mini-batch updates; LBFGS steps on the whole data set: use fit")

    def training_lock(self):
        """A context manager held while the model trains: ``RuntimeError`` if another thread holds it."""
        return TrainingLock(self._training)

    def fit(self, X, y, epochs=1, batch_size=32, validation_data=None, validation_split=0.0, shuffle=True,
            clip_norm=None, callbacks=None, verbose=1, diagnostics=False, client=None, strategy="gradient",
            sync_every=1, threads_per_worker=1, sample_weight=None, class_weight=None):
        """Train; see :func:`fastgrad.training.fit` (returns a :class:`~fastgrad.callbacks.History`).

        ``sample_weight`` (n,) and ``class_weight`` (a dict ``{class: weight}`` or
        ``"balanced"``) weight each batch's loss: ``sum_i w_i l_i / sum_i w_i`` (PyTorch's
        class-weight convention); ``validation_data`` may be ``(X, y, w)``. All-ones weights
        give the unweighted trajectory bit for bit. See :func:`fastgrad.training.fit`.

        With a Dask ``client``, trains data-parallel on the cluster instead
        (:func:`fastgrad.distributed.fit`: ``strategy`` "gradient" or "average", ``sync_every``,
        ``threads_per_worker``, ``sample_weight``/``class_weight`` with NumPy data);
        ``validation_split`` and ``diagnostics`` are local-only.
        """
        if client is not None:
            if class_weight is not None:  # folded into the per-row weights here, on NumPy data
                sample_weight = self._weights(sample_weight, class_weight, *self._data(X, y)[1:], len(X))
            if validation_split or diagnostics:
                raise ValueError("validation_split and diagnostics are not available with client=...; "
                                 "pass validation_data instead")
            from fastgrad import distributed
            with self.training_lock():
                return distributed.fit(self, X, y, client=client, strategy=strategy, epochs=epochs,
                                       batch_size=batch_size, sync_every=sync_every, shuffle=shuffle,
                                       clip_norm=clip_norm, validation_data=validation_data, callbacks=callbacks,
                                       verbose=verbose, threads_per_worker=threads_per_worker,
                                       sample_weight=sample_weight)
        from fastgrad.training import fit
        with self.training_lock():
            return fit(self, X, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
                       validation_split=validation_split, shuffle=shuffle, clip_norm=clip_norm,
                       callbacks=callbacks, verbose=verbose, diagnostics=diagnostics, sample_weight=sample_weight,
                       class_weight=class_weight)

    def hessian(self, X, y, h=None, client=None, block_size=None):
        """Hessian (n_params, n_params) of the loss at the current parameters, by central
        differences of the analytic gradient (:func:`fastgrad.diff.hessian_from_gradient`),
        in float64 whatever the model's dtype. Refuses models of more than
        ``HESSIAN_MAX_PARAMS`` = 2000 parameters (32 MB of Hessian, 2n gradient passes).
        With a Dask ``client``: one task per ``block_size`` columns, the same result exactly
        (the model and data travel once to each worker)."""
        from fastgrad import diff
        if self.n_params > HESSIAN_MAX_PARAMS:
            raise ValueError(f"model.hessian handles at most {HESSIAN_MAX_PARAMS} parameters, this model has "
                             f"{self.n_params}; use fastgrad.diff.hvp_from_gradient for products instead")
        grad = LossGradient(self, *self._data(X, y))
        return diff.hessian_from_gradient(grad, self.params.astype(np.float64), h=h, client=client,
                                          block_size=block_size)

    # ----- description and persistence --------------------------------------------------------
    def summary(self, print_fn=print) -> None:
        """Print a table of the layers (shapes, activations, parameter counts) through
        ``print_fn`` (one call with the whole table), as Keras's ``summary(print_fn=...)``;
        returns None, so a notebook shows it once. The layer column widens to the longest name."""
        print_fn(summary_text(self))

    def save(self, path) -> None:
        """Write weights, architecture, loss, optimizer state and RNG state to one .npz, atomically."""
        from fastgrad.io import save_model
        save_model(self, path)

    @classmethod
    def load(cls, path, backend="compiled") -> "Sequential":
        """Restore a model written by :meth:`save` (never unpickles); training resumes identically."""
        from fastgrad.io import load_model
        return load_model(path, backend=backend)

    def __repr__(self):
        return f"Sequential({self.layers!r}, loss={self.loss!r}, dtype={self.dtype.name!r})"


class LossGradient:
    """``grad(p)``: the gradient (float64) of ``model``'s loss on fixed, validated data at the
    parameters ``p``, leaving ``model.params`` untouched. A picklable object, so that a Hessian
    can be computed on a Dask cluster."""

    def __init__(self, model, X, yf, yl, use_labels):
        self.model, self.data = model, (X, yf, yl, use_labels)

    def __call__(self, p):
        return self.model._batch_loss_grad(*self.data, params=p.astype(self.model.dtype))[1].astype(np.float64)
