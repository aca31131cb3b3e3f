"""Builds the optional C parser ``bridge._phpparse``; all other metadata is in setup.cfg.

Without a C compiler or the Python headers, building the extension fails, a
warning says so, and the install goes on: ``bridge.phpsession`` then uses its
pure-Python parser (``bridge.phpsession.IMPLEMENTATION`` tells which is in use).
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("bridge._phpparse", ["bridge/_phpparse.c"], optional=True),
])
