"""Entry point of the ``update-cache`` flow; see `one_flows.prefect.update_cache`."""

from one_flows.prefect.update_cache import update_cache

__all__ = ["update_cache"]
