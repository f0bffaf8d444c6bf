"""The README's tour runs as written, in a fresh interpreter, and leaves nothing in the folder it
runs from (what a new user pastes must work and must not litter)."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tour_code() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    section = text[text.index("## A tour"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_tour_runs_and_writes_nothing_in_the_working_folder(tmp_path):
    code = tour_code()
    assert "model.save" in code and "fastgrad.diff.hessian" in code  # the block found is the tour
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert os.listdir(tmp_path) == []
