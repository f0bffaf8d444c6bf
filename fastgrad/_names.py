"""The names a model's loss and optimizer go by: fastgrad's, and Keras's and PyTorch's for them."""
from __future__ import annotations

from fastgrad._checks import check_choice
from fastgrad.kernels.activations import SIGMOID, SOFTMAX
from fastgrad.kernels.losses import BCE_LOGITS, HUBER, MAE, MSE
from fastgrad.kernels.train import SOFTMAX_CE

# Loss name -> the code the training kernels (and their references) dispatch on.
LOSSES = {"mse": MSE, "mae": MAE, "huber": HUBER, "binary_cross_entropy": BCE_LOGITS,
          "softmax_cross_entropy": SOFTMAX_CE}
# Keras's and PyTorch's names for the same losses (Keras's cross-entropies on a final softmax or
# sigmoid: see Sequential's ``loss``).
LOSS_ALIASES = {"mean_squared_error": "mse", "mean_absolute_error": "mae", "huber_loss": "huber",
                "binary_crossentropy": "binary_cross_entropy", "categorical_crossentropy": "softmax_cross_entropy",
                "sparse_categorical_crossentropy": "softmax_cross_entropy", "cross_entropy": "softmax_cross_entropy",
                "mse_loss": "mse", "l1_loss": "mae", "binary_cross_entropy_with_logits": "binary_cross_entropy"}
# The output activation (name, kernel code) a classification loss takes inside its fused, stable form.
FUSED_OUTPUT = {"softmax_cross_entropy": ("softmax", SOFTMAX), "binary_cross_entropy": ("sigmoid", SIGMOID)}
CLASSIFICATION = ("binary_cross_entropy", "softmax_cross_entropy")


def loss_name(loss) -> str:
    """fastgrad's name of ``loss`` (one of :data:`LOSSES` or an alias; a :class:`fastgrad.Loss` is
    returned as it is); ``TypeError`` when it is
    None (no default: a classifier must never train as a regression), ``ValueError`` listing the names."""
    if loss is None:
        raise TypeError(f"Sequential needs a loss, one of {', '.join(map(repr, LOSSES))} (or a Keras name such "
                        "as 'sparse_categorical_crossentropy'): there is no default, as in Keras's compile "
                        "and in PyTorch, so that a classifier is never trained as a regression")
    from fastgrad.custom import Loss
    if isinstance(loss, Loss):
        return loss
    loss = check_choice(loss, "loss", tuple(LOSSES) + tuple(LOSS_ALIASES))
    return LOSS_ALIASES.get(loss, loss)


def optimizer_by_name(name):
    """A fastgrad optimizer with its default settings from its name, any case (Keras's habit:
    ``optimizer="adam"``); ``ValueError`` listing the names."""
    from fastgrad.optim import LBFGS, SGD, Adagrad, Adam, AdamW, RMSprop
    classes = {"sgd": SGD, "rmsprop": RMSprop, "adagrad": Adagrad, "adam": Adam, "adamw": AdamW, "lbfgs": LBFGS}
    return classes[check_choice(name.lower(), "optimizer", tuple(classes))]()
