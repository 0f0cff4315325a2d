"""The benchmarks of medsr-se: one script per measurement, each a module of this package, and the code they share in
:mod:`benchmarks.lib`.

Run a script from the repository root as a module (never as a file path)::

    python -m benchmarks.train_step --out benchmarks/results/train_step.json
    python -m benchmarks.quality --quick --out /tmp/quality.json     # seconds: what the test suite runs

Every script takes ``--out REPORT.json`` (a JSON report: the benchmark's name, date, torch version and threads,
machine, then its numbers) and ``--quick`` (tiny sizes: a check that it runs, not a measurement; the test suite runs
every ``--quick`` mode through tests/quick_benchmarks.py). Its module docstring says what it measures and how.

Timings are only worth reporting from a machine doing nothing else: run the benchmarks one at a time, on an idle
machine, and copy the numbers, with the machine and what else ran, into BENCHMARKS.md.

Code is shared only through :mod:`benchmarks.lib`: no script imports another script, nothing here edits
``sys.path`` or imports from ``tests/`` (tests may import :mod:`benchmarks.lib`, e.g. its STARE-shaped archives);
tests/test_benchmarks.py checks it.
"""
