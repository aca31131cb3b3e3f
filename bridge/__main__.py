"""``python -m bridge`` is the ``session-bridge`` command."""

import sys

from bridge.cli import main

sys.exit(main())
