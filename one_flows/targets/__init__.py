"""Registration targets: where sessions and datasets are registered (Alyx, or local tables)."""

from one_flows.targets.alyx import AlyxTarget
from one_flows.targets.base import (
    DatasetType,
    FileBatch,
    ProtectedDatasets,
    RegisteredDataset,
    RegistrationRefused,
    RegistrationTarget,
    dataset_record,
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
    "dataset_record",
]
