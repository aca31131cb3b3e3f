"""The Cookie header a logged-in browser sends, from its cookie jar."""

from __future__ import annotations


def cookie_of(browser, name: str = "PHPSESSID") -> str:
    """The Cookie header ``browser`` (a requests.Session after a login) would send
    with only the cookie ``name``."""
    return f"{name}={browser.cookies[name]}"
