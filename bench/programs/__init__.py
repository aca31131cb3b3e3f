"""Helper programs a scenario starts as processes of their own (speaking JSON
lines on stdout, see bench/lib/helpers.py): ``writer`` (side_loads writes),
``probe`` (side_loads flood)."""
