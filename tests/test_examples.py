"""The examples run (in quick mode) and print the numbers they promise.

Each example is imported from examples/ by path and its ``main(argv)`` called in this
process (compiled kernels are shared between examples, which keeps the file fast); the
assertions read the printed output, as a user would.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load(name):
    """Import examples/<name>.py as a module (examples/ on sys.path for their _plot helper)."""
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)
    spec = importlib.util.spec_from_file_location(f"fastgrad_example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name, capsys, *argv):
    """(stdout, return value) of examples/<name>.py's main(argv)."""
    result = load(name).main(list(argv))
    return capsys.readouterr().out, result


def number(pattern, text):
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not found in:\n{text}"
    return float(match.group(1))


def row(label, text):
    """The numbers on the line that starts with ``label``."""
    for line in text.splitlines():
        if line.startswith(label):
            return [float(v) for v in re.findall(r"[-+]?\d+\.?\d*(?:e[-+]?\d+)?", line[len(label):])]
    raise AssertionError(f"no line starting with {label!r} in:\n{text}")


def test_every_example_has_docstring_main_and_guard():
    names = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".py") and not f.startswith("_"))
    assert len(names) == 10  # the articles' scripts live in examples/articles/ with tests of their own
    for name in names:
        source = open(os.path.join(EXAMPLES, name)).read()
        assert source.startswith('"""'), name
        assert "def main(argv=None):" in source, name
        assert source.rstrip().endswith('if __name__ == "__main__":\n    main()'), name


def test_perceptron_gradients(capsys):
    out, _ = run("perceptron_gradients", capsys)
    y_hat, loss, dw, db = (row(key, out) for key in ("y_hat", "loss", "dL/dw", "dL/db"))
    for values, expected in ((y_hat, 0.7109495026), (loss, 0.3411538747), (dw, -0.5781009947), (db, -0.2890504974)):
        assert len(values) == 4
        np.testing.assert_allclose(values, expected, atol=1e-9)
    assert round(y_hat[0], 4) == 0.7109 and round(loss[0], 4) == 0.3412
    assert number(r"largest difference from the hand computation: (\S+)", out) < 1e-9
    assert "gradient check OK" in out


def test_linear_regression(capsys):
    out, _ = run("linear_regression", capsys, "--quick")
    assert abs(number(r"learned: +w = (\S+),", out) - 2.0) < 0.05
    assert abs(number(r"learned: +w = \S+, b = (\S+)", out) - 1.0) < 0.05


def test_approximate_square(capsys):
    out, _ = run("approximate_square", capsys, "--quick")
    assert number(r"final mse on 201 points of \[-1, 1\]: (\S+)", out) < 5e-3
    square, predicted = row("  0.70", out)
    assert square == pytest.approx(0.49) and abs(predicted - 0.49) < 0.1


def test_optimizers_rosenbrock(capsys):
    out, _ = run("optimizers_rosenbrock", capsys, "--quick")
    for method in ("adam", "newton", "momentum"):
        line = next(line for line in out.splitlines() if line.startswith(method))
        assert " yes " in line, line
        assert row(method, out)[2] < 1e-4  # lr, iterations, |x - (1,1)|, f(x), time
    assert row("newton", out)[1] < 50
    assert " no " in next(line for line in out.splitlines() if line.startswith("gd"))  # 5000 steps are too few


def test_hessian_analysis(capsys):
    out, _ = run("hessian_analysis", capsys)
    saddle = row("x^2 - y^2 ", out)
    assert saddle[:2] == pytest.approx([-2.0, 2.0], abs=1e-6) and out.count("saddle") == 1
    assert row("x^2 + y^2 ", out)[:2] == pytest.approx([2.0, 2.0], abs=1e-6)
    assert row("x^2 + 10 y^2 ", out) == pytest.approx([2.0, 20.0, 10.0], rel=1e-6)
    assert len(re.findall(r"\bminimum$", out, re.M)) == 2
    assert number(r"needs (\d+) steps", out) > 10
    order2 = [float(line.split()[-1]) for line in out.splitlines() if re.match(r"\s+0\.0?0?1\s", line)]
    assert len(order2) == 3 and order2[2] < order2[1] / 100 < order2[0] / 1e4


def test_vanishing_gradients(capsys):
    out, result = run("vanishing_gradients", capsys, "--quick")
    tables = out.split("mean per-batch")
    for table in tables:
        sigmoid_first, relu_first, _ = row("     1 ", table)
        assert sigmoid_first < 1e-3 * relu_first
    assert number(r"first-layer gradient, sigmoid / relu: (\S+)", out) < 1e-3
    assert len(result["at_init"]["relu"]) == 10


def test_lr_schedules(capsys):
    out, _ = run("lr_schedules", capsys)
    table = out.split("ReduceLROnPlateau")[0]
    step = [row(f"{e:>5} ", table)[0] for e in range(12)]
    assert step == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025] * 3 + [0.0125] * 3)
    assert row("    3 ", table)[1:] == pytest.approx([0.0512, 0.07939, 0.1], abs=1e-5)
    plateau = out.split("levels off:")[1].split("model.fit")[0]
    lrs = [row(f"{e:>5} ", plateau)[1] for e in range(12)]
    assert lrs == pytest.approx([0.1] * 6 + [0.05] * 4 + [0.025] * 2)
    fit = out.split("small regression:")[1]
    fit_lrs = [row(f"{e:>5} ", fit)[0] for e in range(8)]
    assert fit_lrs == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125], abs=1e-4)


def test_digits_quick(capsys):
    out, result = run("digits", capsys, "--quick")
    accuracy = number(r"fastgrad test accuracy after 3 epochs: (\S+)", out)
    assert "UCI optical digits" in result["source"]  # shipped: real data without scikit-learn
    assert accuracy >= 0.9
    assert number(r"fastgrad \(compiled\) +(\S+) ms", out) > 0
    assert number(r"fastgrad \(reference NumPy\) +(\S+) ms", out) > 0
    for name, module in (("scikit-learn MLPClassifier", "sklearn"), ("PyTorch", "torch")):
        line = next(line for line in out.splitlines() if line.strip().startswith(name))
        installed = importlib.util.find_spec(module) is not None
        assert ("not installed" not in line and " ms " in line) if installed else "not installed" in line


def test_plot_is_optional(capsys, monkeypatch):
    plot = load("_plot")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if matplotlib were not installed
    assert plot.pyplot(True) is None
    assert "matplotlib is not installed" in capsys.readouterr().out
    assert plot.pyplot(False) is None


def test_runs_as_a_script():
    env = dict(os.environ, PYTHONPATH=os.path.dirname(EXAMPLES) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, os.path.join(EXAMPLES, "hessian_analysis.py")], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "saddle" in done.stdout


def test_plots_go_outside_the_source_tree(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    plot = load("_plot")
    monkeypatch.setenv("FASTGRAD_PLOT_DIR", str(tmp_path))
    plt = plot.pyplot(True)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = plot.save(plt, fig, "/somewhere/examples/demo_script.py", "curve.png")
    assert path == str(tmp_path / "demo_script-curve.png")
    assert (tmp_path / "demo_script-curve.png").stat().st_size > 0
    monkeypatch.delenv("FASTGRAD_PLOT_DIR")
    examples_dir = os.path.dirname(os.path.abspath(plot.__file__))
    assert not plot.plot_dir().startswith(examples_dir)


def test_training_recipe(capsys):
    """The Keras-habits recipe on the digits: lr_find's suggestion, a per-step warm-up schedule,
    balanced class weights and metrics; the figures it prints are real and in range."""
    out, results = run("training_recipe", capsys, "--quick")
    suggested = number(r"suggested lr ([0-9.e+-]+)", out)
    assert 1e-4 < suggested < 1.0
    for name in ("balanced weights", "no weights"):
        scores, rare_recall, history = results[name]
        assert scores["accuracy"] > 0.85 and scores["auc"] > 0.97 and 0.0 <= rare_recall <= 1.0
    lrs = results["balanced weights"][2].history["lr"]
    assert lrs[0] == 0.0 and max(lrs) <= suggested * 1.0001   # warm-up from 0, then cosine down


def test_sklearn_pipeline_quick(capsys):
    """The pipeline and grid search against scikit-learn's MLP: both test accuracies and search
    times printed, the same figures as returned, and accuracies a tuned MLP reaches on digits."""
    pytest.importorskip("sklearn")
    out, results = run("sklearn_pipeline", capsys, "--quick")
    assert set(results) == {"fastgrad", "scikit-learn"}
    # the first-fit line is printed; its time is not asserted (speed is measured in bench/)
    assert re.search(r"first fastgrad fit \(kernel compile or cache load\): \S+ s", out)
    for name, figures in results.items():
        accuracy, seconds = row(f"{name:>13}: test accuracy", out)[:2]
        assert accuracy == pytest.approx(figures["accuracy"], abs=1e-4) and accuracy > 0.85
        assert seconds == pytest.approx(figures["seconds"], abs=0.01)  # printed as returned, not a speed
        assert figures["best"]["alpha"] in (1e-4, 1e-2)
    ratio, diff = row("time ratio scikit-learn / fastgrad:", out)
    assert ratio == pytest.approx(results["scikit-learn"]["seconds"] / results["fastgrad"]["seconds"], abs=0.05)
    expected = 100 * (results["fastgrad"]["accuracy"] - results["scikit-learn"]["accuracy"])
    assert diff == pytest.approx(expected, abs=0.005)
    assert abs(diff) < 3  # the same network, initialisation and data: within a few points
