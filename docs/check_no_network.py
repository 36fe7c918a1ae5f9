"""Fail when a page of the built site loads a script, a style sheet or a font from the network.

Usage: ``python docs/check_no_network.py docs/_build/html``. Links to other
sites are fine; what a browser fetches on its own to show the page is not.
"""

import pathlib
import re
import sys

# <script src=...>, <link rel=stylesheet|preload|icon href=...>, @import and url(...) in inline styles.
FETCHED = re.compile(r"""<script[^>]*\ssrc=["'](https?:)?//|<link[^>]*\shref=["'](https?:)?//[^>]*>|"""
                     r"""@import\s+["'](https?:)?//|url\(["']?(https?:)?//""", re.IGNORECASE)


def remote_loads(site):
    """``(page, snippet)`` for every network load found in the HTML and CSS files under ``site``."""
    found = []
    for path in sorted(site.rglob("*")):
        if path.suffix not in (".html", ".css"):
            continue
        for match in FETCHED.finditer(path.read_text(errors="replace")):
            snippet = match.group(0)
            if snippet.lower().startswith("<link") and not re.search(r"rel=[\"']?(stylesheet|preload|icon)",
                                                                     snippet, re.IGNORECASE):
                continue  # a plain link (rel=canonical and the like) is not fetched
            found.append((path.relative_to(site), snippet[:120]))
    return found


if __name__ == "__main__":
    site = pathlib.Path(sys.argv[1])
    loads = remote_loads(site)
    for page, snippet in loads:
        print(f"{page}: loads from the network: {snippet}", file=sys.stderr)
    if not any(site.rglob("*.html")):
        sys.exit(f"no HTML pages under {site}")
    sys.exit(1 if loads else 0)
