"""Entry point of the registration flows; see `one_flows.prefect.register`."""

from one_flows.prefect.register import register_new_sessions, register_session

__all__ = ["register_new_sessions", "register_session"]
