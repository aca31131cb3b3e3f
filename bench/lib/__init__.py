"""What every benchmark shares: the processes it starts (redis-server, the
server under test, the Node load generator, helper programs), CPU and memory
from /proc, statistics, and where results go.

Modules: ``paths`` (where things are), ``placement`` (cores, nice),
``procstat`` (/proc CPU and RSS), ``stats`` (percentiles, medians, cells),
``miniredis`` (RESP without a dependency), ``loadgen`` (the Node generator),
``servers`` (the daemon or the Node peer), ``stack`` (redis + sessions +
generator, started and stopped together), ``helpers`` (Python helper
programs speaking JSON lines), ``pyspy`` (profiles), ``versions`` (what
ran), ``results`` (logging, saving, the entry-point wrapper), ``daemon_at``
(the daemon of a given commit).
"""
