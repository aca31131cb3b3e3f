"""The lowest versions `make check-lowest` installs are the lower bounds setup.cfg states."""

from __future__ import annotations

import configparser
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def lower_bounds() -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    bounds = {}
    for line in parser["options"]["install_requires"].split("\n"):
        if match := re.fullmatch(r"([\w.-]+)>=([\w.]+),<[\w.]+", line.strip()):
            bounds[match[1].lower()] = match[2]
        else:
            assert not line.strip(), f"every requirement needs a lower and an upper bound: {line}"
    return bounds


def test_constraints_pin_every_lower_bound():
    pinned = {}
    for line in (ROOT / "tests/lowest-constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pinned[name.strip().lower()] = version.strip()
    assert pinned == lower_bounds()
