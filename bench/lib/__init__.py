"""What every benchmark shares: the processes it starts (redis-server, the
server under test, the Node load generator, helper programs), CPU and memory
from /proc, statistics, and where results go.

- ``paths``: where things are and where results go; ``placement``: cores, nice;
- ``stack``: redis + PHP-seeded sessions + generator, started and stopped
  together (processes through devtools.children); ``servers``: the daemon or
  the Node peer; ``loadgen``: the Node generator's protocol; ``helpers``:
  Python helper programs speaking JSON lines; ``miniredis``: RESP without a
  dependency; ``sessions``: the seeded session ids;
- ``procstat``: /proc CPU and RSS, CPU windows, waiting for idle; ``stats``:
  percentiles, medians, table cells; ``pyspy``: profiles;
- ``results``: progress lines, result files, the entry-point wrapper;
  ``versions``: what ran; ``run_report`` and ``plots``: bench/run.py's report;
- ``daemon_at`` and ``daemon_hooks``: the daemon of a given commit, with or
  without measuring hooks.
"""
