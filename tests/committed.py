"""The committed docs and results that tests check against each other (text made by code from JSON)."""

import json
import os

from rnnlab.analysis.stats import page_block

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def results(*parts: str):
    """The committed JSON at ``docs/results/<parts>``."""
    with open(os.path.join(ROOT, "docs", "results", *parts)) as f:
        return json.load(f)


def block(page: str, name: str) -> str:
    """The text of ``docs/<page>`` between its ``<!-- NAME: ... -->`` and ``<!-- /NAME -->`` markers, stripped."""
    with open(os.path.join(ROOT, "docs", page)) as f:
        return page_block(f.read(), name).strip()
