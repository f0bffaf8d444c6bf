"""fastgrad.diff under hostile functions (issue 10.5): the user's exception from compiled loops,
outputs that change length or type, steps that vanish. Cases that could crash run in a subprocess."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastgrad import analysis, diff

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter on this checkout; a crash fails the test, not the run."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_compiled_f_raising_gives_the_users_exception_serial_and_parallel():
    out = run_python("""
        import numba, numpy as np
        from fastgrad import diff

        class Refused(ValueError):
            pass

        @numba.njit
        def bad(x):
            if x[-1] > 1.0:
                raise Refused("user says no")
            return x @ x

        @numba.njit
        def bad_vec(x):
            if x[-1] > 1.0:
                raise KeyError("no such key")
            return x * 2.0

        @numba.njit
        def bad_scalar(t):
            if t > 1.0:
                raise ValueError("scalar says no")
            return t * t

        cases = []
        for n in (5, 600):  # serial and parallel compiled loops
            x = np.ones(n)
            cases += [("gradient", n, lambda x=x: diff.gradient(bad, x)),
                      ("hessian", n, lambda x=x: diff.hessian(bad, x)),
                      ("hvp", n, lambda x=x: diff.hvp(bad, x, np.ones(x.size))),
                      ("check_grad", n, lambda x=x: diff.check_grad(bad, lambda z: 2 * z, x)),
                      ("jacobian", n, lambda x=x: diff.jacobian(bad_vec, x)),
                      ("derivative", n, lambda x=x: diff.derivative(bad_scalar, np.ones(x.size * 100)))]
        for name, n, call in cases:
            try:
                call()
                print(name, n, "no error")
            except Exception as e:
                print(name, n, type(e).__name__, str(e))
    """)
    lines = out.strip().splitlines()
    assert len(lines) == 12, out
    for line in lines:
        name, n, kind, *msg = line.split(" ", 3)
        expected = {"jacobian": ("KeyError", "'no such key'"), "derivative": ("ValueError", "scalar says no")}.get(
            name, ("Refused", "user says no"))
        assert (kind, " ".join(msg)) == expected, out


def test_compiled_f_whose_output_length_varies():
    out = run_python("""
        import numba, numpy as np
        from fastgrad import diff

        @numba.njit
        def vary(x):
            if x[-1] > 1.0:
                return np.ones(x.size + 1)
            return np.ones(x.size)

        for n in (5, 600):
            try:
                diff.jacobian(vary, np.ones(n))
                print(n, "no error")
            except Exception as e:
                print(n, type(e).__name__, str(e))
    """)
    lines = out.strip().splitlines()
    assert len(lines) == 2, out
    for n, line in zip((5, 600), lines):
        assert line.startswith(f"{n} ValueError f must return real values of shape ({n},)"), line
        assert f"of shape ({n + 1},)" in line, line


def test_python_f_whose_output_varies():
    def vary_len(x):
        return np.ones(4) if x[-1] > 1.0 else np.ones(3)

    with pytest.raises(ValueError, match=r"f must return real values of shape \(3,\).*shape \(4,\)"):
        diff.jacobian(vary_len, np.ones(3))

    def vary_type(x):
        return np.ones(2) if x[0] > 1.0 else float(x @ x)

    for call in (lambda: diff.gradient(vary_type, np.ones(3)), lambda: diff.hessian(vary_type, np.ones(3)),
                 lambda: diff.hvp(vary_type, np.ones(3), np.ones(3)),
                 lambda: diff.check_grad(vary_type, lambda z: 2 * z, np.ones(3))):
        with pytest.raises(ValueError, match=r"f must return a real scalar \(shape \(\)\), got ndarray of shape \(2,\)"):
            call()
    with pytest.raises(ValueError, match="f must return a real scalar"):
        diff.derivative(lambda t: "x" if t > 1.0 else t, 1.0)
    with pytest.raises(ValueError, match="f must return a real scalar"):
        diff.hessian(lambda w: None if w[0] < 1.0 else 1.0, np.ones(2))


def test_explicit_steps_that_vanish_raise():
    assert diff.derivative(np.sin, 1.0, h=1e-8) == pytest.approx(np.cos(1.0), rel=1e-7)
    f = lambda w: float(w @ w)
    x = np.array([1.0, 2.0])
    calls = {
        "derivative": lambda h: diff.derivative(np.sin, 1.0, h=h),
        "derivative richardson": lambda h: diff.derivative(np.sin, 1.0, h=h, richardson=True),
        "gradient": lambda h: diff.gradient(f, x, h=h),
        "jacobian": lambda h: diff.jacobian(f, x, h=h),
        "hessian": lambda h: diff.hessian(f, x, h=h),
        "hessian richardson": lambda h: diff.hessian(f, x, h=h, richardson=True),
        "hessian_from_gradient": lambda h: diff.hessian_from_gradient(lambda w: 2 * w, x, h=h),
        "hvp": lambda h: diff.hvp(f, x, np.ones(2), h=h),
        "hvp_from_gradient": lambda h: diff.hvp_from_gradient(lambda w: 2 * w, x, np.ones(2), h=h),
        "check_grad": lambda h: diff.check_grad(f, lambda w: 2 * w, x, h=h),
        "taylor": lambda h: analysis.taylor(np.sin, 1.0, order=3, h=h),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match="h vanishes against x"):
            call(1e-300)
    with pytest.raises(ValueError, match=r"h vanishes against x: x \+ h == x in float64 at index \(1,\)"):
        diff.gradient(f, x, h=np.array([1e-3, 1e-17]))
    # float32 points: a step fine in float64 can vanish in float32
    with pytest.raises(ValueError, match="in float32"):
        diff.gradient(f, x.astype(np.float32), h=1e-9)
    # the Richardson levels go down to h/4: a step that survives alone but not divided by 4 is refused
    with pytest.raises(ValueError, match="h vanishes"):
        diff.hessian(f, np.array([1.0, 0.5]), h=2.0 ** -52, richardson=True)
    assert np.all(np.isfinite(diff.hessian(f, np.array([1.0, 0.5]), h=2.0 ** -52)))
