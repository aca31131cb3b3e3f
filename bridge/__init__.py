"""session-bridge: Socket.IO for PHP apps, authenticated by the PHP session in Redis.

This module holds the version only and imports nothing: the command line
entry point must be able to patch the standard library with eventlet before
any other module of the package (or of its dependencies) is imported.
"""

__version__ = "0.1.0"
