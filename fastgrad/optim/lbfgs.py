"""L-BFGS for full-batch training on a flat parameter buffer, with ``torch.optim.LBFGS``'s iterates.

The per-iteration work is a handful of vector operations (dot products, axpys) over the
buffer, so this is NumPy: a compiled kernel would save only Python overhead per vector op,
small beside the closure's forward/backward pass over the whole data set.
"""
from __future__ import annotations

import numbers

import numpy as np

from fastgrad._checks import _describe
from fastgrad.optim._line_search import strong_wolfe
from fastgrad.optim._validate import Hyperparameter, check_no_aliasing, line_search, nonnegative, positive_int


def _max_eval_or_default(value, name):
    return None if value is None else positive_int(value, name)


class LBFGS:
    """Limited-memory BFGS with PyTorch's semantics, defaults and iterates.

    ``opt = LBFGS(lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
    tolerance_change=1e-9, history_size=100, line_search_fn=None)``;
    ``loss = opt.step(closure, params, grads)`` runs up to ``max_iter`` iterations (at most
    ``max_eval`` closure calls, default ``max_iter * 5 // 4``) and returns the loss of the
    first closure call, as ``torch.optim.LBFGS.step``.

    * ``params``: 1-D C-contiguous writeable float32/float64 buffer, updated in place.
    * ``grads``: a writeable C-contiguous buffer of the same shape and dtype.
    * ``closure()``: evaluates the loss at the current ``params``, writes its gradient into
      ``grads`` and returns the loss (a real number). Typically the whole data set
      (full-batch training).

    Each iteration: direction ``d = -H g`` from the two-loop recursion over the last
    ``history_size`` pairs ``s = x_{k+1} - x_k``, ``y = g_{k+1} - g_k`` (kept only when
    ``y.s > 1e-10``; initial scaling ``H0 = y.s / y.y``), Nocedal & Wright Algorithm 7.4;
    step ``t = lr`` (on the very first iteration ``min(1, 1/||g||_1) lr``), or with
    ``line_search_fn="strong_wolfe"`` a step meeting the strong Wolfe conditions
    (``c1 = 1e-4, c2 = 0.9``, cubic interpolation: Nocedal & Wright Algorithms 3.5/3.6 as in
    minFunc). Stops when ``max|g| <= tolerance_grad``, when ``g.d > -tolerance_change``, when
    the step ``max|t d|`` or the loss change is below ``tolerance_change``, or at the
    iteration/evaluation budget. The history is kept between calls to ``step``
    (``reset()`` forgets it); memory ``2 history_size + 4`` buffers of the params' size.

    Source: ``torch/optim/lbfgs.py`` (PyTorch 2.x), whose order of operations this follows
    so that float64 trajectories agree to round-off.
    Raises ``TypeError``/``ValueError`` naming the argument (also on later assignment of a
    hyperparameter), for unsuitable or overlapping buffers, a closure that does not return a
    real number, and buffers of another size or dtype than the saved history.
    """

    lr = Hyperparameter(nonnegative)
    max_iter = Hyperparameter(positive_int)
    max_eval = Hyperparameter(_max_eval_or_default)
    tolerance_grad = Hyperparameter(nonnegative)
    tolerance_change = Hyperparameter(nonnegative)
    history_size = Hyperparameter(positive_int)
    line_search_fn = Hyperparameter(line_search)

    def __init__(self, lr=1.0, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search_fn=None):
        self.lr = lr
        self.max_iter = max_iter
        self.max_eval = max_iter * 5 // 4 if max_eval is None else max_eval
        self.tolerance_grad = tolerance_grad
        self.tolerance_change = tolerance_change
        self.history_size = history_size
        self.line_search_fn = line_search_fn
        self.reset()

    def _check_consistency(self):
        """No relations between L-BFGS's hyperparameters."""

    def hyperparameters(self) -> dict:
        """The constructor's keyword arguments, as now set."""
        return {"lr": self.lr, "max_iter": self.max_iter, "max_eval": self.max_eval,
                "tolerance_grad": self.tolerance_grad, "tolerance_change": self.tolerance_change,
                "history_size": self.history_size, "line_search_fn": self.line_search_fn}

    def reset(self) -> None:
        """Forget the history and the counters (the next step starts as a first step)."""
        self.state = {"func_evals": 0, "n_iter": 0}

    @property
    def step_count(self) -> int:
        """Iterations made so far (``state["n_iter"]``; the other optimizers count updates)."""
        return int(self.state["n_iter"])

    def __repr__(self) -> str:
        return f"LBFGS({', '.join(f'{k}={v!r}' for k, v in self.hyperparameters().items())})"

    def _check_buffers(self, params, grads):
        for arr, name in ((params, "params"), (grads, "grads")):
            if not isinstance(arr, np.ndarray) or arr.dtype not in (np.float32, np.float64) or arr.ndim != 1:
                raise ValueError(f"{name} must be a 1-D float32 or float64 numpy array, got {_describe(arr)}")
            if not arr.flags.writeable or not arr.flags.c_contiguous or arr.size == 0:
                raise ValueError(f"{name} must be a non-empty, writeable, C-contiguous buffer")
        if grads.shape != params.shape or grads.dtype != params.dtype:
            raise ValueError(f"grads must have the shape and dtype of params {params.shape} {params.dtype}, "
                             f"got {grads.shape} {grads.dtype}")
        check_no_aliasing([params, grads], [], ["params", "grads"], [])
        prev = self.state.get("prev_flat_grad")
        if prev is not None and (prev.shape != params.shape or prev.dtype != params.dtype):
            raise ValueError(f"params ({params.size}, {params.dtype}) do not match the saved history "
                             f"({prev.size}, {prev.dtype}); call reset() to start afresh")

    @staticmethod
    def _evaluate(closure, grads):
        """``(loss, copy of the gradient)`` from one closure call."""
        loss = closure()
        if isinstance(loss, np.ndarray) and loss.size == 1:
            loss = loss.reshape(())[()]
        if isinstance(loss, (bool, np.bool_)) or not isinstance(loss, (numbers.Real, np.floating, np.integer)):
            raise TypeError(f"closure must return the loss as a real number, got {_describe(loss)}")
        return float(loss), grads.copy()

    def step(self, closure, params, grads) -> float:
        """Up to ``max_iter`` L-BFGS iterations on ``params`` in place; returns the first loss."""
        if not callable(closure):
            raise TypeError(f"closure must be callable, got {_describe(closure)}")
        self._check_buffers(params, grads)
        lr, max_iter, max_eval = self.lr, self.max_iter, self.max_eval
        tolerance_grad, tolerance_change = self.tolerance_grad, self.tolerance_change
        state = self.state

        loss, flat_grad = self._evaluate(closure, grads)
        orig_loss = loss
        current_evals = 1
        state["func_evals"] += 1
        if np.max(np.abs(flat_grad)) <= tolerance_grad:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag, prev_flat_grad, prev_loss = state.get("H_diag"), state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                d, H_diag = self._direction(flat_grad, prev_flat_grad, d, t, old_dirs, old_stps, ro, H_diag)
            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.copy()
            else:
                prev_flat_grad[...] = flat_grad
            prev_loss = loss
            t = min(1.0, 1.0 / np.sum(np.abs(flat_grad))) * lr if state["n_iter"] == 1 else lr
            gtd = flat_grad.dot(d)
            if gtd > -tolerance_change:  # not a descent direction
                break

            ls_func_evals = 0
            opt_cond = False
            if self.line_search_fn is not None:
                x_init = params.copy()

                def obj_func(step):
                    params[...] = x_init + step * d
                    value = self._evaluate(closure, grads)
                    params[...] = x_init
                    return value

                loss, flat_grad, t, ls_func_evals = strong_wolfe(
                    obj_func, t, d, loss, flat_grad, gtd, tolerance_change=tolerance_change,
                    max_ls=max_eval - current_evals)
                params += t * d
                opt_cond = np.max(np.abs(flat_grad)) <= tolerance_grad
            else:
                params += t * d
                if n_iter != max_iter:
                    loss, flat_grad = self._evaluate(closure, grads)
                    opt_cond = np.max(np.abs(flat_grad)) <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            if (n_iter == max_iter or current_evals >= max_eval or opt_cond
                    or np.max(np.abs(d * t)) <= tolerance_change or abs(loss - prev_loss) < tolerance_change):
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss

    def _direction(self, flat_grad, prev_flat_grad, d, t, old_dirs, old_stps, ro, H_diag):
        """``(-H g, H_diag)``: the two-loop recursion (Nocedal & Wright Algorithm 7.4), after adding
        the newest curvature pair (dropping the oldest) if ``y.s > 1e-10``, ``H_diag = y.s / y.y``."""
        y = flat_grad - prev_flat_grad
        s = d * t
        ys = y.dot(s)
        if ys > 1e-10:
            while len(old_dirs) >= self.history_size:
                old_dirs.pop(0)
                old_stps.pop(0)
                ro.pop(0)
            old_dirs.append(y)
            old_stps.append(s)
            ro.append(1.0 / ys)
            H_diag = ys / y.dot(y)
        num_old = len(old_dirs)
        al = [None] * num_old
        q = -flat_grad
        for i in range(num_old - 1, -1, -1):
            al[i] = old_stps[i].dot(q) * ro[i]
            q -= al[i] * old_dirs[i]
        r = q * H_diag
        for i in range(num_old):
            be_i = old_dirs[i].dot(r) * ro[i]
            r += (al[i] - be_i) * old_stps[i]
        return r, H_diag
