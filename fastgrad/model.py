"""Sequential: a network of Dense layers on one flat parameter buffer, trained in compiled code."""
from __future__ import annotations

import threading

import numpy as np

from fastgrad import init as _init
from fastgrad._checks import as_float_array, as_float_dtype, as_int, as_scalar, check_choice
from fastgrad._threads import blas_phase
from fastgrad.kernels.activations import IDENTITY, SIGMOID, SOFTMAX
from fastgrad.kernels.losses import BCE_LOGITS, HUBER, MAE, MSE
from fastgrad.kernels.train import SOFTMAX_CE
from fastgrad.layers import Dense

# Loss name -> the code the training kernels (and their references) dispatch on.
LOSSES = {"mse": MSE, "mae": MAE, "huber": HUBER, "binary_cross_entropy": BCE_LOGITS,
          "softmax_cross_entropy": SOFTMAX_CE}
CLASSIFICATION = ("binary_cross_entropy", "softmax_cross_entropy")
HESSIAN_MAX_PARAMS = 2000


def _backend(name):
    check_choice(name, "backend", ("compiled", "reference"))
    if name == "compiled":
        from fastgrad.kernels import train
    else:
        from fastgrad.reference import train
    return train


class Sequential:
    """A stack of :class:`Dense` layers with a loss and an optimizer.

    ``loss``: ``mse``, ``mae``, ``huber`` (``huber_delta``), ``binary_cross_entropy``
    (the last layer outputs logits; the loss is fused with the sigmoid) or
    ``softmax_cross_entropy`` (logits; integer labels or class probabilities).
    ``optimizer``: a :mod:`fastgrad.optim` optimizer (default ``Adam()``). ``l1``/``l2``
    add ``l1 * sum|W| + l2 * sum W^2`` over every weight (not biases) to the loss, as
    Keras does. ``dtype``: float32 (default) or float64. ``seed``: seeds the one RNG that
    initializes the weights and shuffles the batches. ``backend="reference"`` runs the
    same math in NumPy (:mod:`fastgrad.reference.train`), for tests and as a baseline.

    ``params`` is ONE flat, contiguous array holding every layer's W (row-major) then b,
    in layer order; ``grads`` has the same layout; ``layer.W``/``layer.b`` are views.
    Assigning ``model.params = a`` (or ``grads``, ``layer.W``, ``layer.b``) copies ``a`` into
    the buffer, so views stay views; ``a`` must be a NumPy array of exactly the buffer's
    shape and dtype, else ``ValueError`` naming the attribute.

    Threads: ``predict``, ``forward``, ``evaluate`` and ``loss_and_grad`` may run on one
    model from several threads at once (each thread has its own work buffers); ``fit`` and
    ``train_step`` while the model trains in another thread raise ``RuntimeError``.
    Models pickle and deep-copy (the copy continues training bit-identically).
    """

    def __init__(self, layers, loss="mse", optimizer=None, l1=0.0, l2=0.0, dtype="float32", seed=None,
                 backend="compiled", huber_delta=1.0):
        from fastgrad.optim import Adam, Optimizer
        layers = list(layers) if isinstance(layers, (list, tuple)) else None
        if not layers or not all(isinstance(layer, Dense) for layer in layers):
            raise ValueError("layers must be a non-empty list of fastgrad.Dense layers")
        for i in range(1, len(layers)):
            if layers[i].n_in != layers[i - 1].n_out:
                raise ValueError(f"layer {i} expects {layers[i].n_in} inputs but layer {i - 1} gives "
                                 f"{layers[i - 1].n_out} outputs")
        self.loss = check_choice(loss, "loss", tuple(LOSSES))
        self.optimizer = Adam() if optimizer is None else optimizer
        if not isinstance(self.optimizer, Optimizer):
            raise TypeError(f"optimizer must be a fastgrad.optim optimizer, got {type(self.optimizer).__name__}")
        self.l1 = as_scalar(l1, "l1", low=0.0)
        self.l2 = as_scalar(l2, "l2", low=0.0)
        self.huber_delta = as_scalar(huber_delta, "huber_delta", low=0.0, low_open=True)
        self.dtype = as_float_dtype(dtype)
        self.backend = backend
        self._train = _backend(backend)
        self.seed = None if seed is None else as_int(seed, "seed", low=0)
        self.rng = np.random.default_rng(self.seed)
        self.layers = layers
        self.layout = np.zeros((len(layers), 5), dtype=np.int64)
        self.act_params = np.zeros((len(layers), 2), dtype=self.dtype)
        offset = 0
        for i, layer in enumerate(layers):
            layer._bind(self, i)
            self.layout[i] = (offset, offset + layer.n_in * layer.n_out, layer.n_in, layer.n_out, layer.code)
            self.act_params[i] = (layer.p1, layer.p2)
            offset += layer.n_params
        self._params = np.zeros(offset, dtype=self.dtype)
        self._grads = np.zeros(offset, dtype=self.dtype)
        for layer in layers:
            layer.W[...] = _init.INITIALIZERS[layer.initializer]((layer.n_in, layer.n_out), rng=self.rng,
                                                                 dtype=self.dtype)
        self.epochs_done = 0
        self.stop_training = False
        self._init_runtime()

    def _init_runtime(self):
        """What is per process and per thread, never pickled: the backend module, each
        thread's work buffers, the lock that keeps one fit at a time."""
        self._train = _backend(self.backend)
        self._local = threading.local()
        self._training = threading.Lock()

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("_train", "_local", "_training"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._init_runtime()

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

    # ----- layout ---------------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        return int(self.params.size)

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    def _layer_view(self, buffer, index, which):
        w_off, b_off, n_in, n_out, _ = (int(v) for v in self.layout[index])
        if which == "W":
            return buffer[w_off:b_off].reshape(n_in, n_out)
        return buffer[b_off:b_off + n_out]

    def _work(self, batch):
        """This thread's work buffers for batches of up to ``batch`` rows (allocated once per
        size and thread, so that several threads can predict on one model at once)."""
        buffers = getattr(self._local, "buffers", None)
        if buffers is None:
            buffers = self._local.buffers = {}
        if batch not in buffers:
            widths = self.layout[:, 3]
            buf_off = np.concatenate([[0], np.cumsum(batch * widths)[:-1]]).astype(np.int64)
            total = int(batch * widths.sum())
            dt = self.dtype
            buffers[batch] = dict(
                zbuf=np.empty(total, dt), abuf=np.empty(total, dt), gbuf=np.empty(total, dt),
                delta=np.empty(batch * int(widths.max()), dt), xbuf=np.empty(batch * self.n_in, dt),
                yfbuf=np.empty(batch * self.n_out, dt), ylbuf=np.empty(batch, np.int64), wbuf=np.empty(batch, dt),
                buf_off=buf_off, grads=np.empty(self.n_params, dt), spare=np.empty(self.n_params, dt))
        return buffers[batch]

    # ----- data validation -------------------------------------------------------------------
    def _inputs(self, X, name="X"):
        X = as_float_array(X, name, ndim=2, dtype=self.dtype)
        if X.shape[1] != self.n_in:
            raise ValueError(f"{name} must have {self.n_in} columns (the first layer's n_in), got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{name} must be finite, found NaN or inf")
        return X

    def _targets(self, y, n, name="y"):
        """(yf (n, k) floats or a (1, k) dummy, yl (n,) int64 labels or a (1,) dummy, use_labels)."""
        k = self.n_out
        arr = np.asarray(y)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
        if arr.shape[:1] != (n,):
            raise ValueError(f"{name} must have {n} rows to match X, got shape {arr.shape}")
        dummy_f = np.zeros((1, k), self.dtype)
        if self.loss == "softmax_cross_entropy" and arr.ndim == 1:
            if arr.dtype.kind not in "iu":
                raise TypeError(f"{name} must be integer class labels (n,) or probabilities (n, {k}), "
                                f"got dtype {arr.dtype} with shape {arr.shape}")
            if arr.min() < 0 or arr.max() >= k:
                raise ValueError(f"{name} labels must lie in [0, {k}), got values in [{arr.min()}, {arr.max()}]")
            return dummy_f, np.ascontiguousarray(arr, dtype=np.int64), True
        if arr.ndim == 1 and k == 1:
            arr = arr.reshape(n, 1)
        if arr.shape != (n, k):
            raise ValueError(f"{name} must have shape ({n}, {k}) for loss {self.loss!r} and {k} outputs"
                             + (f" (or integer labels ({n},))" if self.loss == "softmax_cross_entropy" else "")
                             + f", got {np.asarray(y).shape}")
        yf = as_float_array(arr, name, dtype=self.dtype)
        if not np.all(np.isfinite(yf)):
            raise ValueError(f"{name} must be finite, found NaN or inf")
        if self.loss in CLASSIFICATION and (yf.min() < 0 or yf.max() > 1):
            raise ValueError(f"{name} must lie in [0, 1] for loss {self.loss!r}, got values in [{yf.min()}, {yf.max()}]")
        return yf, np.zeros(1, np.int64), False

    def _data(self, X, y):
        X = self._inputs(X)
        return X, *self._targets(y, X.shape[0])

    def _weights(self, sample_weight, class_weight, yf, yl, use_labels, n, name="sample_weight"):
        """Validated weights (n,) in the model's dtype, or None (unweighted; see fastgrad._weights)."""
        from fastgrad._weights import combined_weights
        return combined_weights(self, sample_weight, class_weight, yf, yl, use_labels, n, name)

    def _kernel_weights(self, w):
        """What the kernels take: the weights, or an empty array for the unweighted path."""
        return np.empty(0, self.dtype) if w is None else w

    @property
    def _loss_code(self):
        return LOSSES[self.loss]

    @property
    def _loss_param(self):
        return self.dtype.type(self.huber_delta)

    def _accuracy(self, correct, n):
        if self.loss == "softmax_cross_entropy":
            return float(correct / n)
        if self.loss == "binary_cross_entropy":
            return float(correct / (n * self.n_out))
        return None

    # ----- inference -------------------------------------------------------------------------
    def forward(self, X, batch_size=1024):
        """The last layer's raw outputs (logits for the classification losses), shape (n, n_out)."""
        return self._predict(X, batch_size, IDENTITY)

    def predict(self, X, batch_size=1024):
        """Outputs for X (n, n_in): class probabilities for softmax_cross_entropy (softmax of the
        logits), probabilities for binary_cross_entropy (sigmoid), raw outputs otherwise."""
        post = {"softmax_cross_entropy": SOFTMAX, "binary_cross_entropy": SIGMOID}.get(self.loss, IDENTITY)
        return self._predict(X, batch_size, post)

    def _predict(self, X, batch_size, post):
        X = self._inputs(X)
        batch = min(as_int(batch_size, "batch_size", low=1), X.shape[0])
        work = self._work(batch)
        out = np.empty((X.shape[0], self.n_out), self.dtype)
        with blas_phase():
            self._train.predict_batches(self.params, self.layout, self.act_params, X, batch, work["zbuf"],
                                        work["abuf"], work["buf_off"], out, post)
        return out

    def evaluate(self, X, y, batch_size=1024, sample_weight=None) -> dict:
        """{"loss": mean loss over X (plus the l1/l2 penalty, as in training), "accuracy": ...}
        (accuracy only for the classification losses).

        ``sample_weight`` (n,) (float or int, finite, >= 0, not all zero): the loss is the
        weighted mean ``sum_i w_i l_i / sum_i w_i`` (``l_i``: row i's loss averaged over its
        outputs), PyTorch's class-weight convention; accuracy stays the unweighted fraction.
        Raises ``ValueError``/``TypeError`` naming the bad argument."""
        X, yf, yl, use_labels = self._data(X, y)
        w = self._weights(sample_weight, None, yf, yl, use_labels, X.shape[0])
        batch = min(as_int(batch_size, "batch_size", low=1), X.shape[0])
        work = self._work(batch)
        sums = np.zeros(2)
        with blas_phase():
            self._train.evaluate_batches(self.params, self.layout, self.act_params, X, yf, yl, use_labels,
                                         self._kernel_weights(w), batch, self._loss_code, self._loss_param,
                                         work["zbuf"], work["abuf"], work["gbuf"], work["buf_off"], sums)
        total = X.shape[0] if w is None else float(np.sum(w, dtype=np.float64))
        logs = {"loss": float(sums[0] / total + self._penalty())}
        accuracy = self._accuracy(int(sums[1]), X.shape[0])
        if accuracy is not None:
            logs["accuracy"] = accuracy
        return logs

    def _penalty(self):
        if self.l1 == 0 and self.l2 == 0:
            return 0.0
        return float(self._train.penalty(self.params, self.grads, self.layout, self.l1, self.l2, False))

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
        work = self._work(X.shape[0])
        grads = work["grads"]
        with blas_phase():
            loss = float(self._train.loss_and_grad_batch(
                self.params if params is None else params, grads, self.layout, self.act_params, X, yf, yl,
                use_labels, self._kernel_weights(w), self._loss_code, self._loss_param, self.l1, self.l2, work["zbuf"], work["abuf"],
                work["gbuf"], work["delta"], work["buf_off"]))
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
        X, yf, yl, use_labels = self._data(X, y)
        w = self._weights(sample_weight, class_weight, yf, yl, use_labels, X.shape[0])
        with self.training_lock():
            result = run_batches(self, X, yf, yl, use_labels, np.arange(X.shape[0]), X.shape[0], clip_norm,
                                 diagnostics=False, weights=w)
        if result.failed is not None:
            raise FloatingPointError(result.failure("train_step"))
        return float(result.losses[0])

    def training_lock(self):
        """A context manager held while the model trains: ``RuntimeError`` if another thread holds it."""
        return _TrainingLock(self._training)

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
    def summary(self) -> str:
        """A table of the layers (shapes, activations, parameter counts); also printed."""
        lines = [f"Sequential ({self.backend}, {self.dtype.name}, loss={self.loss}, optimizer={self.optimizer!r})",
                 f"{'#':>3}  {'layer':<34}{'output':>12}{'params':>10}"]
        for i, layer in enumerate(self.layers):
            lines.append(f"{i:>3}  {layer!r:<34}{'(n, ' + str(layer.n_out) + ')':>12}{layer.n_params:>10,}")
        lines.append(f"total parameters: {self.n_params:,} ({self.params.nbytes:,} bytes in one flat buffer)")
        text = "\n".join(lines)
        print(text)
        return text

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


class _TrainingLock:
    def __init__(self, lock):
        self._lock = lock

    def __enter__(self):
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this model is already training in another thread; train a copy "
                               "(copy.deepcopy(model)) to train in parallel")
        return self

    def __exit__(self, *exc):
        self._lock.release()
        return False


def assign_into(buffer, value, name):
    """Copy ``value`` into ``buffer`` (a model's flat buffer or a view of it), after checking that
    it is a NumPy array of exactly ``buffer``'s shape and dtype; ``ValueError`` naming ``name``."""
    if value is buffer:
        return
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{name} must be a numpy array of shape {buffer.shape} and dtype {buffer.dtype} "
                         f"(it is copied into the model's buffer), got {type(value).__name__}")
    if value.dtype != buffer.dtype:
        raise ValueError(f"{name} must have dtype {buffer.dtype} (the model's), got {value.dtype}")
    if value.shape != buffer.shape:
        raise ValueError(f"{name} must have shape {buffer.shape}, got {value.shape}")
    if not value.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous, got an array with strides {value.strides}")
    np.copyto(buffer, value)


class LossGradient:
    """``grad(p)``: the gradient (float64) of ``model``'s loss on fixed, validated data at the
    parameters ``p``, leaving ``model.params`` untouched. A picklable object, so that a Hessian
    can be computed on a Dask cluster."""

    def __init__(self, model, X, yf, yl, use_labels):
        self.model, self.data = model, (X, yf, yl, use_labels)

    def __call__(self, p):
        return self.model._batch_loss_grad(*self.data, params=p.astype(self.model.dtype))[1].astype(np.float64)
