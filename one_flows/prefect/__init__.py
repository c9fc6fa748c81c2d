"""The Prefect layer of one-flows: its block, tasks and flows.

- `blocks`: `AlyxCredentials`, the block that names an Alyx database and how to log in.
- `retries`, `targets`, `ratelimit`: how steps retry, where they register (one client per flow
  run), and the request rate all workers keep to an Alyx server.
- `tasks`, `hashing`: the steps, as plain task functions over the library.
- `events`: ``one.session.registered`` and ``one.session.flagged``.
- `register`, `update_cache`, `preprocess`: the flows; `serve` serves the deployments of the
  ``prefect.yaml`` installed with the package.

Only the block is imported with the package (for ``prefect block register -m
one_flows.prefect`` and the ``prefect.collections`` entry point).
"""

from one_flows.prefect.blocks import AlyxCredentials

__all__ = ["AlyxCredentials"]
