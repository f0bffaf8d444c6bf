"""scikit-learn estimators backed by fastgrad: ``MLPClassifier`` and ``MLPRegressor``.

They keep scikit-learn's MLP parameters, defaults, objective, stopping rules and fitted
attributes (see ``docs/sklearn.md``) and run every epoch in fastgrad's compiled loop.
Needs scikit-learn (``pip install fastgrad[sklearn]``); ``import fastgrad`` never imports it.
"""
try:
    import sklearn  # noqa: F401
except ModuleNotFoundError as error:  # the optional extra is missing: say how to get it
    raise ModuleNotFoundError("fastgrad.sklearn needs scikit-learn: pip install 'fastgrad[sklearn]' "
                              "(or pip install scikit-learn)", name=error.name) from error

from fastgrad.sklearn._estimators import MLPClassifier, MLPRegressor  # noqa: E402

__all__ = ("MLPClassifier", "MLPRegressor")
