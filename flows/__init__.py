"""Deployable Prefect flows of one-flows: short compositions of the tasks in `one_flows.tasks`.

- ``register-new-sessions`` (`register_new_sessions`): every new flagged session under a root.
- ``register-session`` (`register_session`): one session folder, for re-runs from the UI.
- ``update-cache`` (`update_cache`): the ONE cache tables of a data root.
- ``preprocess`` (`preprocess`): an example flow triggered by ``one.session.registered``.
"""

from flows.preprocess import preprocess
from flows.register import register_new_sessions, register_session
from flows.update_cache import update_cache

__all__ = ["preprocess", "register_new_sessions", "register_session", "update_cache"]
