#!/usr/bin/env python3
"""Rewrites the import list of README.md's "How it is built" from the code
(the same facts tests/test_readme.py checks): run it after changing imports."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.unit.test_readme import expected_paragraph, import_graph  # noqa: E402

readme = ROOT / "README.md"
text = readme.read_text()
listed = re.compile(r"(?:^- `\w+ -> [\w, ]+`\n)+", re.M)
readme.write_text(listed.sub(expected_paragraph(import_graph()) + "\n", text, count=1))
