"""Read-only contract calls (views) off the event loop: worker processes and per-source gas budgets."""
