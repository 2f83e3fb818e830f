"""The error a cluster operation raises: the command line prints its message and exits with its code.

It sits apart from the cluster launcher (node/cluster/local.py) because the start-up waiter
(node/cluster/wait.py) raises it too and the launcher calls the waiter.
"""


class ClusterError(RuntimeError):
    """A cluster operation failed; the message says which node and why."""
