"""Builds the optional C parser ``bridge.php._cparse``; all other metadata is in setup.cfg.

Without a C compiler or the Python headers, building the extension fails, a
warning says so, and the install goes on: ``bridge.php`` then uses its
pure-Python parser (``bridge.php.IMPLEMENTATION`` tells which is in use).
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("bridge.php._cparse", ["bridge/php/_cparse.c"], optional=True),
])
