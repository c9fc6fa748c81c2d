"""The deployable entry points that ``prefect.yaml`` names, one file per module of flows.

Each ``flows/<module>.py`` only imports the flows of ``one_flows.prefect.<module>``, where they
are defined (and where ``one-flows serve`` takes them from, without this folder):

- ``register.py``: ``register-new-sessions`` and ``register-session``.
- ``update_cache.py``: ``update-cache``, the ONE cache tables of a data root.
- ``preprocess.py``: ``preprocess``, an example flow triggered by ``one.session.registered``.
"""
