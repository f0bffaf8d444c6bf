"""The article scripts (examples/articles/) run in quick mode and print the right numbers.

Each script runs once, in a subprocess with this checkout first on PYTHONPATH. Its
``check | ...`` rows are parsed and asserted: fastgrad's value equals the row's exact value
within the row's tolerance, the key values equal the ones written down here (worked out
independently: closed forms, or the article's recipe in plain Python), and the rows where the
article is wrong are exactly the known ones.
"""
from __future__ import annotations

import functools
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTICLES = os.path.join(ROOT, "examples", "articles")
SCRIPTS = ("derivatives", "chain_rule_neuron", "gradients_and_optimizers", "hessian_taylor_regression",
           "optimization_in_practice")

# label -> (value, tolerance), per script: the numbers the articles' examples come to.
EXPECTED = {
    "derivatives": {
        "f'(2) of x^2": (4.0, 1e-8),
        "f'(-1) of x^2": (-2.0, 1e-8),
        "dJ/dw1 at (0.0, 0.0)": (-6.0, 1e-7),
        "w1 at the minimum of J": (3.0, 1e-9),
        "w2 at the minimum of J": (-2.0, 1e-9),
        "d/dx sigmoid = s(1 - s), F.sigmoid_backward": (0.104993585403507, 1e-12),
        "d/dx sin(x) (cos x)": (-0.4161468365471424, 1e-7),
        "f'' of -x^2 at 0": (-2.0, 1e-6),
        "E[X], trapezoidal rule on [-8, 12] (NumPy)": (2.0, 1e-9),
    },
    "chain_rule_neuron": {
        "loss at w = 0": (44.0, 1e-12),
        "argmin of loss(w), minimize(method='gd')": (2.0, 1e-9),
        "y_hat (Sequential.loss_and_grad)": (0.549833997312478, 1e-11),
        "loss (Sequential.loss_and_grad)": (0.5981388693815918, 1e-11),
        "dL/dw1 (Sequential.loss_and_grad)": (-0.9003320053750441, 1e-11),
        "dL/dw2 (Sequential.loss_and_grad)": (-1.3504980080625661, 1e-11),
        "dL/db (Sequential.loss_and_grad)": (-0.45016600268752205, 1e-11),
        "dL/dw1 (F.dense_backward)": (-0.9003320053750441, 1e-11),
        "w1 at step 9": (0.6564, 5e-5),
        "w2 at step 9": (0.9846, 5e-5),
        "b at step 9": (0.3282, 5e-5),
        "y_hat at step 9": (0.9892, 5e-5),
        "loss at step 9": (0.0108, 5e-5),
        "AUC, trapezoid of (fpr, tpr) (NumPy)": (1.0, 1e-12),
    },
    "gradients_and_optimizers": {
        "sigmoid' at 0 (its maximum)": (0.25, 1e-15),
        "z = w x + b": (0.9, 1e-12),
        "y_hat = sigmoid(0.9)": (0.7109495026250039, 1e-11),
        "BCE loss": (0.3411538747320353, 1e-11),
        "SGD momentum 0.9, lr 0.001: max |fastgrad - hand|": (0.0, 1e-12),
        "Adam, lr 0.01: max |fastgrad - hand|": (0.0, 1e-12),
        "J[1,2]": (2.0, 1e-8),
        "H[0,1]": (1.0, 1e-6),
        "H[2,2]": (6.0, 1e-6),
        "Hessian eigenvalue 0": (3 - math.sqrt(2), 1e-6),
        "condition number 6 / (3 - sqrt 2)": (6 / (3 - math.sqrt(2)), 1e-5),
        "StepLR(30, 0.1) lr at epoch 60": (1e-5, 1e-17),
        "ReduceLROnPlateau(0.5, 10): lr after 25 flat epochs": (2.5e-4, 1e-17),
        "warm-up + cosine (1000, 10000) at step 5500": (5e-4, 1e-15),
        "clipped g[0]": (0.6, 1e-6),
    },
    "hessian_taylor_regression": {
        "df/dx of x^2 + 3xy + y^2 at (1, 2)": (8.0, 1e-7),
        "df/dy of x^2 + 3xy + y^2 at (1, 2)": (7.0, 1e-7),
        "x after 20 steps = 5 * 0.8^20": (0.057646075230342354, 1e-12),
        "saddle eigenvalue min": (-2.0, 1e-6),
        "bowl eigenvalue min": (2.0, 1e-6),
        "sin'''(0) (order-3 stencil, Richardson)": (-1.0, 1e-6),
        "w after 200 epochs": (2.075663232058441, 1e-10),
        "b after 200 epochs": (0.7268317244555035, 1e-10),
        "second derivative of x^3 at 2": (12.0, 1e-5),
        "minimum x": (3.0, 1e-9),
        "minimum y": (-1.0, 1e-9),
    },
    "optimization_in_practice": {
        "f'(3) of 3x^3 + 2x^2 - 5x + 1": (88.0, 1e-6),
        "f'(2) of 3x^3 + 2x^2 - 5x + 1": (39.0, 1e-6),
        "f'(3) of the polynomial the article's code builds": (-1.0, 1e-6),
        "minimum from 5, lr 0.1": (-1.1105105035811115, 1e-8),
        "x after 50 steps, lr 1.05": (586.9542643984792, 1e-6),
        "x after 50 steps, lr 0.5": (0.0, 1e-12),
        "minimum value": (1.75, 1e-12),
        "condition number": (10.0, 1e-5),
        "Newton: iterations to ||grad|| <= 1e-8": (1.0, 0.0),
        "d/dx (x^2 + 1)^3 at 2": (300.0, 1e-5),
        "w with L2 0.5 w^2 (weight_decay=1)": (2.0000001438772035, 1e-9),
        "Adam(0.01), 3000 epochs: prediction at 0.5": (0.25, 0.03),
        "Adam(0.01), 3000 epochs: prediction at 0": (0.0, 0.03),
    },
}

# the rows where the article's own number is wrong (the script must say so)
ARTICLE_WRONG = {
    "derivatives": set(),
    "chain_rule_neuron": set(),
    "gradients_and_optimizers": set(),
    "hessian_taylor_regression": {"w after 200 epochs", "b after 200 epochs"},
    "optimization_in_practice": {"f'(3) of 3x^3 + 2x^2 - 5x + 1"},
}


@functools.lru_cache(maxsize=None)
def run(name):
    """(returncode, stdout, stderr) of examples/articles/<name>.py --quick."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, os.path.join(ARTICLES, f"{name}.py"), "--quick"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    return proc.returncode, proc.stdout, proc.stderr


def rows(stdout):
    """{label: dict(article, fastgrad, exact, tol, verdict)} from the ``check | ...`` lines."""
    table = {}
    for line in stdout.splitlines():
        if not line.startswith("check | "):
            continue
        label, article, value, exact, tol, verdict = (part.strip() for part in line.split(" | ")[1:])
        assert label not in table, f"duplicate row label {label!r}"
        table[label] = {"article": article.split()[1], "fastgrad": float(value.split()[1]),
                        "exact": float(exact.split()[1]), "tol": float(tol.split()[1]), "verdict": verdict}
    return table


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_runs_and_every_row_holds(name):
    code, out, err = run(name)
    assert code == 0, f"{name} exited with {code}\n{out[-3000:]}\n{err[-3000:]}"
    table = rows(out)
    assert len(table) >= 15, f"{name} printed only {len(table)} checked rows"
    for label, row in table.items():
        # values are printed to 12 significant digits
        slack = row["tol"] + 1e-11 * max(1.0, abs(row["exact"]))
        assert abs(row["fastgrad"] - row["exact"]) <= slack, (name, label, row)
        assert row["verdict"].startswith("fastgrad ok"), (name, label, row)
    assert "all checked values: fastgrad matches the exact value" in out


@pytest.mark.parametrize("name", SCRIPTS)
def test_key_values(name):
    table = rows(run(name)[1])
    for label, (value, tol) in EXPECTED[name].items():
        assert label in table, f"{name}: no row {label!r}"
        assert abs(table[label]["fastgrad"] - value) <= tol + 1e-11 * max(1.0, abs(value)), (name, label, table[label])


@pytest.mark.parametrize("name", SCRIPTS)
def test_article_errors_are_flagged(name):
    table = rows(run(name)[1])
    wrong = {label for label, row in table.items() if "ARTICLE WRONG" in row["verdict"]}
    assert wrong == ARTICLE_WRONG[name]
    for label in wrong:  # the article's number differs from the right one beyond its printed precision
        row = table[label]
        assert abs(float(row["article"]) - row["exact"]) > 0.005


def test_the_failing_network_and_regression_are_explained():
    out = run("optimization_in_practice")[1]
    assert "raises IndexError on the first call" in out
    assert "f'(3) = 81 + 12 - 5 = 88, not 76" in out
    out = run("hessian_taylor_regression")[1]
    assert "200 epochs end at y = 2.08x + 0.73" in out


def test_plots_go_to_the_given_folder(tmp_path):
    pytest.importorskip("matplotlib")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, os.path.join(ARTICLES, "derivatives.py"), "--quick", "--plot",
                           "--plot-dir", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "derivatives_tangents.png").stat().st_size > 1000
    assert not [f for f in os.listdir(ARTICLES) if f.endswith(".png")]
