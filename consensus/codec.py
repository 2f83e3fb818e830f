"""Moved to `primitives.codec`, the base package shared by consensus, storage and offload (primitives/__init__.py).

A temporary alias so that code written against the old path keeps importing while parallel work lands; nothing
in the tree imports it, and it goes once no branch does.
"""

from primitives.codec import *  # noqa: F403
