"""Moved to `primitives.keys`, the base package shared by consensus, storage and offload (primitives/__init__.py).

A temporary alias so that code written against the old path keeps importing while parallel work lands; nothing
in the tree imports it, and it goes once no branch does.
"""

from primitives.keys import *  # noqa: F403
