"""One module per scenario. Each takes a running ``Stack`` (redis with seeded
sessions and the load generator, bench/lib/stack.py) and a ``Server``, measures,
and returns a dict of figures; the entry scripts (bench/run.py,
bench/side_loads.py, bench/history.py) choose, repeat and report them.

bench/run.py (``make bench``), each against the daemon and the Node peer:

- ``connect``: connect-ws, connect-polling, refused-nocookie, refused-unknown;
- ``held``: one server holding idle sockets at growing counts: ``memory`` (RSS
  per socket, measured at each count), then ``fanout``, ``latency``,
  ``logout`` and ``mass_disconnect`` at the counts they need;
- ``daemon_profile``: py-spy on the daemon during connect-ws.

bench/side_loads.py: ``writes`` (with its helper program ``writer``),
``flood`` (with ``probe``), ``allocations`` (tracemalloc); the helper
programs are in bench/programs.

bench/history.py (also ``make bench``): ``history_publish`` (latency and
fan-out, live against history), ``history_connect`` (connects with and
without ``since``), ``history_memory``; ``history_report`` writes its tables.

A new scenario: a module here with a function taking the stack, the server
and its sizes, returning its figures; called from the entry script that
fits (or a new one built the same way: ``Stack``, ``results.entry``).
"""
