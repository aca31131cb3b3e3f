"""The benchmarks: entry scripts here, their library in ``bench/lib``, one module
per scenario in ``bench/scenarios`` (see bench/scenarios/__init__.py)."""
