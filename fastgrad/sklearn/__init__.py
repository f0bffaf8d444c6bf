"""scikit-learn estimators backed by fastgrad: ``MLPClassifier`` and ``MLPRegressor``.

They keep scikit-learn's MLP parameters, defaults, objective, stopping rules and fitted
attributes (see ``docs/sklearn.md``) and run every epoch in fastgrad's compiled loop.
Needs scikit-learn (``pip install fastgrad[sklearn]``); ``import fastgrad`` never imports it.
"""
from fastgrad.sklearn._estimators import MLPClassifier, MLPRegressor

__all__ = ("MLPClassifier", "MLPRegressor")
