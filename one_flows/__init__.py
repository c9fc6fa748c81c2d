"""one-flows: get experiment sessions and data files into Alyx with Prefect; query them with ONE."""

__version__ = "0.1.0"
