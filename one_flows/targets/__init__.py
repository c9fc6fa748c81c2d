"""Registration targets: where sessions and datasets are registered (Alyx, or local tables)."""

from one_flows.targets.alyx import AlyxTarget
from one_flows.targets.base import (
    DatasetType,
    FileBatch,
    RegisteredDataset,
    RegistrationTarget,
)
from one_flows.targets.errors import (
    ProtectedDatasets,
    RegistrationRefused,
    RepositoryNotFound,
    TargetError,
    TargetUnavailable,
)
from one_flows.targets.local import LocalTarget

__all__ = [
    "AlyxTarget",
    "DatasetType",
    "FileBatch",
    "LocalTarget",
    "ProtectedDatasets",
    "RegisteredDataset",
    "RegistrationRefused",
    "RegistrationTarget",
    "RepositoryNotFound",
    "TargetError",
    "TargetUnavailable",
]
