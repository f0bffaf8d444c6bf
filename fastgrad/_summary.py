"""The text of ``Sequential.summary()``: one aligned row per layer, Residual blocks indented."""
from __future__ import annotations


def _rows(layers, depth=0):
    """(indented name, layer) per layer, in program order; a block's name, then its layers."""
    rows = []
    for layer in layers:
        if hasattr(layer, "layers"):  # a Residual block
            rows.append(("  " * depth + "Residual (x + block(x))", layer))
            rows.extend(_rows(layer.layers, depth + 1))
        else:
            rows.append(("  " * depth + repr(layer), layer))
    return rows


def summary_text(model) -> str:
    """The table: a header naming backend, dtype, loss and optimizer; a row per layer (output
    shape, parameter count), the layer column as wide as the longest name; the totals."""
    rows = _rows(model.layers)
    width = max(len("layer"), *(len(name) for name, _ in rows)) + 2
    lines = [f"Sequential ({model.backend}, {model.dtype.name}, loss={model.loss}, optimizer={model.optimizer!r})",
             f"{'#':>3}  {'layer':<{width}}{'output':>12}{'params':>12}"]
    for i, (name, layer) in enumerate(rows):
        lines.append(f"{i:>3}  {name:<{width}}{'(n, ' + str(layer.n_out) + ')':>12}{layer.n_params:>12,}")
    lines.append(f"total parameters: {model.n_params:,} ({model.params.nbytes:,} bytes in one flat buffer)"
                 + (f"; state: {model.state.size:,} values" if model.state.size else ""))
    return "\n".join(lines)
