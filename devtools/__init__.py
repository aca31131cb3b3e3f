"""What tests/, bench/ and scripts/ share: child processes and cookie headers.

Not part of the daemon and not installed with it (setup.cfg packages only
``bridge``); the standard library only, so ``make demo`` needs nothing more.
"""
