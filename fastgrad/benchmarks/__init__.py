"""``fastgrad bench``: fastgrad against its NumPy references and the peers present, side by side.

* :mod:`~fastgrad.benchmarks.workloads` -- the table of workloads and their competitors;
* :mod:`~fastgrad.benchmarks.runner` -- interleaved timing, medians, speed-ups, compile times;
* :mod:`~fastgrad.benchmarks.machine` -- CPU, threads, BLAS, versions, the triad bandwidth;
* :mod:`~fastgrad.benchmarks.report` -- the JSON record and the plain-text / markdown tables;
* :mod:`~fastgrad.benchmarks.compare` -- regressions between two JSON runs.

Nothing here is imported by ``import fastgrad``; peers (torch, numdifftools) are optional.
"""
