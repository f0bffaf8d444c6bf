"""``fastgrad bench``: fastgrad against its NumPy references, the GEMM floor and the peers present,
each competitor in its own fresh process.

* :mod:`~fastgrad.benchmarks.workloads` -- the table of workloads and their competitors;
* :mod:`~fastgrad.benchmarks.isolated` -- one child process per competitor and round, interleaved;
  medians, spread, the other processes' load;
* :mod:`~fastgrad.benchmarks.child` -- what a child process runs;
* :mod:`~fastgrad.benchmarks.runner` -- calibration, speed-ups, compile times, and the in-process
  interleaved timing the demo and ``pytest bench`` use (fastgrad against its own reference only);
* :mod:`~fastgrad.benchmarks.load` -- the machine's load from ``/proc``;
* :mod:`~fastgrad.benchmarks.machine` -- CPU, threads, BLAS, versions, the triad bandwidth;
* :mod:`~fastgrad.benchmarks.report` -- the JSON record and the plain-text / markdown tables;
* :mod:`~fastgrad.benchmarks.compare` -- regressions between two JSON runs;
* :mod:`~fastgrad.benchmarks.pyperf_export` -- the samples in pyperf's format (optional pyperf).

Nothing here is imported by ``import fastgrad``; peers (torch, jax, numdifftools) are optional.
"""
