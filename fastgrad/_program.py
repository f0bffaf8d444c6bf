"""Building a model's program (kernels/program.py) from its layers."""
from __future__ import annotations

import numpy as np

from fastgrad._checks import check_in_dtype
from fastgrad.kernels.program import ACT, ACTIVATION, BATCH_NORM, DENSE, DROPOUT, LAYER_NORM, N_COLS, OP, REF


class ProgramBuilder:
    """Collects ops while the layers emit them, hands out offsets in ``params`` and ``state``,
    and remembers the initial values the layers ask for (norm weights start at 1)."""

    def __init__(self):
        self.rows, self.scalars, self.owners, self.wheres = [], [], [], []
        self.n_params = 0
        self.n_state = 0
        self.param_fills, self.state_fills = [], []
        self.where, self.before = "layer 0", "the input"  # the place of the layer being emitted

    def take_params(self, n, fill=0.0) -> int:
        off = self.n_params
        self.n_params += n
        if fill:
            self.param_fills.append((off, n, fill))
        return off

    def take_state(self, n, fills=(0.0,)) -> int:
        """``n`` state values, split evenly among ``fills`` (BatchNorm1d: means 0, variances 1)."""
        off = self.n_state
        part = n // len(fills)
        for k, fill in enumerate(fills):
            self.state_fills.append((off + k * part, part, fill))
        self.n_state += n
        return off

    def add(self, owner, op, n_in, n_out, act=0, scalars=(0.0, 0.0), w_off=-1, b_off=-1, s_off=-1, ref=-1) -> int:
        """Append one op; returns its index. ``owner``: the layer whose arrays it holds."""
        present = [off for off in (w_off, b_off) if off >= 0]  # taken just before: they end at n_params
        row = np.array((op, w_off, b_off, n_in, n_out, act, s_off, ref, min(present, default=self.n_params),
                        self.n_params), np.int64)
        self.rows.append(row)
        self.scalars.append(scalars)
        self.wheres.append(self.where)
        self.owners.append(owner)
        if owner is not None and owner._op is None:
            owner._op = len(self.rows) - 1
        return len(self.rows) - 1

    def link(self, fork):
        """Point a FORK at its ADD (the op just added)."""
        self.rows[fork][REF] = len(self.rows) - 1

    def build(self, dtype):
        program = np.array(self.rows, np.int64).reshape(-1, N_COLS)
        check_in_dtype([(f"{name} of {where}", float(value), True)
                        for row, scalars, where in zip(self.rows, self.scalars, self.wheres)
                        for name, value in zip(_scalar_names(row), scalars)], dtype, "the model's dtype")
        op_params = np.array(self.scalars, dtype).reshape(-1, 2)
        return program, op_params


def _scalar_names(row):
    """The names of an op's scalars (the layers' options), for messages."""
    from fastgrad.functional.activations import OPTION_NAMES
    op = int(row[OP])
    if op in (DENSE, ACTIVATION):
        return OPTION_NAMES.get(int(row[ACT]), ())
    return {DROPOUT: ("p",), LAYER_NORM: ("eps",), BATCH_NORM: ("eps", "momentum")}.get(op, ())


def build_program(layers, n_in, dtype):
    """(program, op_params, builder) for ``layers`` on inputs of width ``n_in`` (None: from the
    first layer). Each layer's ``_op`` is set to its first op; raises ``ValueError`` for
    widths that do not chain."""
    builder = ProgramBuilder()
    width = n_in
    for i, layer in enumerate(layers):
        for leaf in layer._leaves():
            leaf._op = None
        builder.where, builder.before = f"layer {i}", (f"layer {i - 1}" if i else "the input (n_in)")
        width = layer._emit(builder, width)
    program, op_params = builder.build(dtype)
    return program, op_params, builder
