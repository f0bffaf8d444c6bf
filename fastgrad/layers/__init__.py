"""The layers of the model API: descriptions whose arrays live in the model's flat buffers.

Each kind compiles to one or more ops of the model's program (:mod:`fastgrad.kernels.program`).
"""
from fastgrad.layers._base import Layer
from fastgrad.layers.activation import Activation, Dropout
from fastgrad.layers.dense import RELU_FAMILY, Dense
from fastgrad.layers.normalization import BatchNorm1d, LayerNorm
from fastgrad.layers.residual import Residual

# Layer kind (the ``kind`` of a saved config) -> class.
LAYER_CLASSES = {cls.__name__: cls for cls in (Dense, Activation, Dropout, LayerNorm, BatchNorm1d, Residual)}

__all__ = ("Layer", "Dense", "Activation", "Dropout", "LayerNorm", "BatchNorm1d", "Residual", "RELU_FAMILY",
           "LAYER_CLASSES")
