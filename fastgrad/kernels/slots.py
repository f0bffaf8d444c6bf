"""The call sites where the compiled training loop calls a kernel by its address.

Each slot (:class:`fastgrad._jit.native.Slot`) fixes the arguments a kernel of that role
takes, for each float dtype; the loop (kernels/train.py) calls ``SLOT.call(address, (...))``
and :mod:`fastgrad.kernels.dispatch` compiles the kernel a model uses for the slot's
signature and hands its address over in the ``Net``, ``Objective`` and ``Update`` tuples.
So the loop's compiled module holds the loop alone: each op kind, activation, loss and
optimizer is compiled once, on its own, when a model first uses it (see DESIGN.md,
"Compile time"). Nothing here is compiled; the arguments are described by example values.

* ``OP_FORWARD`` ``(params, net, x, work, i, m, mode, step)``: op ``i``'s forward pass
  on x (m, N_IN), writing its output block (kernels/ops.py);
* ``OP_BACKWARD`` ``(params, grads, net, x, work, i, m, mode, step)``: its backward pass;
* ``ACT_FORWARD`` ``(x, a, p1, p2)`` and ``ACT_BACKWARD`` ``(x, grad_a, grad_x, p1, p2)``:
  one activation over (m, n) blocks (kernels/activation_layer.py), for the Dense and the
  Activation op;
* ``OUTPUT_LOSS`` ``(out, yf, yl, use_labels, wb, grad_out, loss_code, loss_param) -> float64``:
  the batch's mean loss and its gradient (kernels/train.py's ``_output_loss``, every built-in
  loss in one function, or a user's ``fastgrad.Loss``);
* ``OPTIMIZER_STEP`` ``(params, grads, state, hyper, step, out)``: one optimizer's update
  into ``out`` (kernels/optim.py);
* ``PENALTY`` ``(params, grads, net, l1, l2, with_grad) -> float64``: the l1/l2 penalty on
  Dense weights, and its gradient (kernels/train.py ``penalty``), ``PROXIMAL``
  ``(params, net, threshold)``: l1's proximal step (``proximal_l1``), and ``CLIP``
  ``(grads, max_norm) -> float64``: gradient clipping (kernels/grad_utils.py
  ``clip_to_max_norm``), each compiled only for a model that uses it;
* ``DIAGNOSTICS`` ``(params, grads, prev, net, x, work, m, diag)``: a batch's per-op
  diagnostics (``fit(diagnostics=True)`` only; kernels/train.py).
"""
import numpy as np
from fastgrad._jit.native import Slot
from fastgrad.kernels.program import N_COLS, Data, Net, Objective, Record, Update, Work


def _vector(dtype):
    return np.zeros(1, dtype)


def _matrix(dtype):
    return np.zeros((1, 1), dtype)


def example_net(dtype):
    """A Net of ``dtype`` whose types are those of every model's."""
    return Net(np.zeros((1, N_COLS), np.int64), _matrix(dtype), _vector(dtype), 0, 1, np.zeros((1, 4), np.int64))


def example_work(dtype):
    """A Work of ``dtype`` whose types are those of every model's."""
    v = _vector(dtype)
    return Work(v, v, v, v, v, v, v, np.zeros(1, np.int64), v, np.zeros((1, 2), np.int64), v)


def train_epoch_example(dtype):
    """Arguments whose types are those of every ``train.train_epoch`` call in ``dtype`` (so the
    loop can be compiled before a model's first call; a test checks the two agree)."""
    v, m, f64, i64 = _vector(dtype), _matrix(dtype), np.zeros(1), np.zeros(1, np.int64)
    return (v, v, example_net(dtype), Data(m, m, i64, True, v), _example_objective(dtype),
            Update(0, m, f64, f64, 0.0, 0, 0, 0), example_work(dtype),
            Record(f64, i64, False, np.zeros((1, 3)), i64, 0), i64, 0, 0, 0)


def evaluate_batches_example(dtype):
    """Arguments whose types are those of every ``train.evaluate_batches`` call in ``dtype``."""
    m, i64 = _matrix(dtype), np.zeros(1, np.int64)
    return (_vector(dtype), example_net(dtype), Data(m, m, i64, True, _vector(dtype)), _example_objective(dtype), 0,
            example_work(dtype), np.zeros(2))


def loss_and_grad_batch_example(dtype):
    """Arguments whose types are those of every ``train.loss_and_grad_batch`` call in ``dtype``
    (``loss_and_grad``, fit's L-BFGS path)."""
    v, m = _vector(dtype), _matrix(dtype)
    return (v, v, example_net(dtype), m, m, np.zeros(1, np.int64), True, v, _example_objective(dtype),
            example_work(dtype), 0, 0)


def predict_batches_example(dtype):
    """Arguments whose types are those of every ``train.predict_batches`` call in ``dtype``
    (``predict``, ``forward``, and the metrics a fit logs)."""
    m = _matrix(dtype)
    return (_vector(dtype), example_net(dtype), m, 0, example_work(dtype), m, 0, 0, 0)


def _example_objective(dtype):
    return Objective(0, np.dtype(dtype).type(0), 0.0, 0.0, False, 0, 0, 0)


OP_FORWARD = Slot("op_forward", lambda dt: (
    _vector(dt), example_net(dt), _matrix(dt), example_work(dt), 0, 0, 0, 0))
OP_BACKWARD = Slot("op_backward", lambda dt: (
    _vector(dt), _vector(dt), example_net(dt), _matrix(dt), example_work(dt), 0, 0, 0, 0))
ACT_FORWARD = Slot("act_forward", lambda dt: (_matrix(dt), _matrix(dt), dt.type(0), dt.type(0)))
ACT_BACKWARD = Slot("act_backward", lambda dt: (
    _matrix(dt), _matrix(dt), _matrix(dt), dt.type(0), dt.type(0)))
OUTPUT_LOSS = Slot("output_loss", lambda dt: (
    _matrix(dt), _matrix(dt), np.zeros(1, np.int64), True, _vector(dt), _matrix(dt), 0, dt.type(0)),
    returns_float=True)
DIAGNOSTICS = Slot("diagnostics", lambda dt: (
    _vector(dt), _vector(dt), _vector(dt), example_net(dt), _matrix(dt), example_work(dt), 0, np.zeros((1, 3))))
OPTIMIZER_STEP = Slot("optimizer_step", lambda dt: (
    _vector(dt), _vector(dt), _matrix(dt), np.zeros(1), 0, _vector(dt)))
PENALTY = Slot("penalty", lambda dt: (_vector(dt), _vector(dt), example_net(dt), 0.0, 0.0, True), returns_float=True)
PROXIMAL = Slot("proximal", lambda dt: (_vector(dt), example_net(dt), dt.type(0)))
CLIP = Slot("clip", lambda dt: (_vector(dt), 0.0), returns_float=True)

call_op_forward = OP_FORWARD.call
call_op_backward = OP_BACKWARD.call
call_act_forward = ACT_FORWARD.call
call_act_backward = ACT_BACKWARD.call
call_output_loss = OUTPUT_LOSS.call
call_optimizer_step = OPTIMIZER_STEP.call
call_diagnostics = DIAGNOSTICS.call
call_penalty = PENALTY.call
call_proximal = PROXIMAL.call
call_clip = CLIP.call
