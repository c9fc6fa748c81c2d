"""Entry point of the example ``preprocess`` flow; see `one_flows.prefect.preprocess`."""

from one_flows.prefect.preprocess import preprocess

__all__ = ["preprocess"]
