"""one_flows.alf agrees with ONE-api 3.6.1 on a table of valid and invalid ALF paths.

Each path goes through every parser and path function, as str and as pathlib.Path, with every
combination of ``as_dict`` and ``assert_valid``; see conftest.py for what "agree" means.
Paths on which we deliberately differ (documented in ``one_flows.alf``) list the functions
that differ; test_differences.py asserts our results on them, and
``test_listed_differences_are_real`` keeps those lists honest.
"""

from __future__ import annotations

import itertools
import pathlib

import pytest

U = "2622b17c-9408-4910-99cb-abf16d9225b9"
S = "subject/2020-01-01/001"

VALID_DATASETS = [
    f"lab/Subjects/{S}/collection/#revision#/_namespace_obj.times_timescale.extra.foo.ext",
    f"{S}/alf/spikes.times.npy",
    f"{S}/spikes.times.npy",
    f"{S}/alf/probe00/spikes.times.npy",
    f"{S}/alf/probe00/pykilosort/spikes.clusters.npy",
    "/mnt/s0/Data/Subjects/ZM_1085/2019-02-12/002/alf/_ibl_trials.intervals.npy",
    "/mnt/s0/Data/mainenlab/Subjects/ZM_1085/2019-02-12/002/alf/_ibl_trials.intervals.npy",
    "hoferlab/Subjects/SWC_043/2020-09-21/001/raw_ephys_data/probe00/"
    "_spikeglx_ephysData_g0_t0.imec0.ap.cbin",
    "churchlandlab/Subjects/CSHL049/2020-01-08/001/raw_video_data/_iblrig_leftCamera.raw.mp4",
    "/home/user/Downloads/ONE/openalyx.internationalbrainlab.org/cortexlab/Subjects/KS023/"
    "2019-12-10/001/alf/probe00/spikes.amps.npy",
    "C:/Data/lab/Subjects/subject/2020-01-01/001/alf/obj.attr.npy",
    # session numbers: unpadded, partly padded, extremes
    "subject/2020-01-01/1/alf/spikes.times.npy",
    "subject/2020-01-01/01/alf/spikes.times.npy",
    "subject/2020-01-01/999/alf/spikes.times.npy",
    "subject/2020-01-01/000/alf/spikes.times.npy",
    # dots and hyphens in subjects and collections
    "sub.ject/2020-01-01/001/alf/spikes.times.npy",
    "sub-ject_1/2020-01-01/001/alf/spikes.times.npy",
    f"{S}/raw.data/spikes.times.npy",
    f"{S}/alf/v1.0/spikes.times.npy",
    f"{S}/raw-data/spikes.times.npy",
    # revisions
    f"{S}/alf/#2021-03-04#/spikes.times.npy",
    f"{S}/#v1.0.0#/spikes.times.npy",
    f"{S}/alf/#v-1_a#/spikes.times.npy",
    f"lab/Subjects/{S}/#2020-01-01#/obj.attr.npy",
    # timescales, _times and _intervals
    f"{S}/alf/spikes.times_ephysClock.npy",
    f"{S}/alf/_ibl_trials.goCue_times_bpod.csv",
    f"{S}/alf/_ibl_trials.stimOn_times.npy",
    f"{S}/alf/_ibl_trials.intervals_bpod.npy",
    f"{S}/alf/obj.attr_times.npy",
    f"{S}/alf/obj.attr_intervals.npy",
    f"{S}/alf/obj.stim_intervals_bpod_x.npy",
    f"{S}/alf/obj.attr_ts1_ts2.npy",
    # extras and UUIDs
    f"{S}/alf/_ibl_wheel.timestamps_bpod.raw.v12.npy",
    f"{S}/alf/spikes.times.{U}.npy",
    f"{S}/alf/spikes.times_ephysClock.part1.{U}.npy",
    f"{S}/alf/#v1#/spikes.times.{U}.npy",
    f"{S}/alf/obj.attr.npy.gz",
    f"{S}/alf/obj.attr.a-b.c.npy",
    f"{S}/alf/obj.attr..x.npy",
    # namespaces and unusual objects/attributes
    f"{S}/alf/channels._phy_ids.csv",
    f"{S}/alf/_iblmic_audioSpectrogram.frequencies.npy",
    f"{S}/alf/_spikeglx_ephysData_g0_t0.imec.wiring.json",
    f"{S}/raw_behavior_data/_iblrig_taskSettings.raw.json",
    f"{S}/_ibl_experiment.description.yaml",
    f"{S}/alf/ns_obj.attr.npy",
    f"{S}/alf/_ns_obj_x.attr.npy",
    f"{S}/alf/obj.ATTR.NPY",
    f"{S}/alf/2obj.3attr.4ext",
    f"Subjects/{S}/alf/obj.attr.npy",
    "2020-01-01/2020-01-01/001/obj.attr.npy",
    "sübject/2020-01-01/001/alf/öbj.attr.npy",
    f"{S}/#v1#/alf.x.y",
]

FOLDERS = [
    S,
    f"{S}/",
    f"/{S}",
    f"lab/Subjects/{S}",
    f"/data/lab/Subjects/{S}/",
    "subject/2020-01-01/1",
    "subject/2020-02-30/001",
    "subject/2020-13-01/001",
    "subject/2020-1-01/001",
    "subject/20200101/001",
    "subject/2020-01-01",
    "2020-01-01/001",
    f"{S}/alf",
    f"{S}/alf/",
    f"{S}/#v1#",
    f"{S}/#v1#/",
    f"{S}/alf/#v1#/",
    f"lab/Subjects/{S}/alf/#v1#",
    f"{S}/raw.data",
    f"{S}/foo.npy",
    f"{S}/create_me.flag",
    f"{S}/#v1#/#v2#",
    f"{S}/alf/#v1#/junk",
    f"{S}//alf",
    "subject/./2020-01-01/001",
    "Subjects",
    "lab/Subjects",
    "a/b/c",
    "subject/2020-01-01/001/##",
]

FILENAMES = [
    "spikes.times.npy",
    "trials.feedbackType.npy",
    "_ibl_trials.feedbackType.npy",
    f"_ns_obj.attr1.{U}.metadata.json",
    "spike_train.npy",
    "foo.npy",
    "create_me.flag",
    "obj.attr",
    "obj",
    ".npy",
    "..npy",
    "obj..npy",
    "obj.attr.",
    ".obj.attr.npy",
    "_ibl_.npy",
    "_ibl_trials",
    "_ns_.attr.npy",
    "__ibl_obj.attr.npy",
    "_ibl__obj.attr.npy",
    "obj.é.npy",
    "öbj.attr.npy",
    "obj.attr.np-y",
    "obj.attr_.npy",
    "obj.attr__ts.npy",
    "obj.attr_times_.npy",
    "obj.a-b.npy",
    "obj.attr.npy ",
    "obj attr.x.npy",
    "obj.attr.x y.npy",
    "#v1#",
    "obj.attr.2622B17C-9408-4910-99CB-ABF16D9225B9.npy",
    "obj.attr.2622b17c9408491099cbabf16d9225b9.npy",
    "obj.attr.00000000-0000-0000-0000-000000000000.npy",
    "obj.attr.2622b17c-9408-1910-99cb-abf16d9225b9.npy",
    "obj.attr.2622b17c-9408-5910-99cb-abf16d9225b9.npy",
    "obj.attr.2622b17c-9408-3910-99cb-abf16d9225b9.npy",
    f"{U}.npy",
    f"obj.{U}",
    "obj.attr.extra.2622b17c-9408-4910-99cb.npy",
    "wheel.position_timestamps.npy",
]

RELATIVE = [
    "alf/spikes.times.npy",
    "alf/probe00/spikes.times.npy",
    "alf/#v1#/spikes.times.npy",
    "#v1#/spikes.times.npy",
    "raw.data/obj.attr.npy",
    "../alf/obj.attr.npy",
    "alf/obj.attr.npy/",
    "alf/junk/#v#/#w#/obj.attr.npy",
    "a b/obj.attr.npy",
    "alf//obj.attr.npy",
    "./alf/obj.attr.npy",
    f"alf/#v1#/obj.attr.{U}.npy",
]

ODD = ["", "/", ".", "..", "#", "##", "###", "//", "Subjects/Subjects", f"{S}/alf/#v1#/.npy"]

# A grid of session prefixes and session-relative paths.
PREFIXES = ["", "/", "/mnt/data/", "lab/Subjects/", "/root/lab_01/Subjects/", "C:/"]
SESSIONS = ["subject/2021-12-31/002", "SWC.043/2021-12-31/2", "Subjects/2021-12-31/010"]
SUFFIXES = ["", "/alf", "/alf/probe01/#2022-01-01#/spikes.depths.npy", "/_ibl_trials.table.pqt"]
GRID = [p + s + x for p, s, x in itertools.product(PREFIXES, SESSIONS, SUFFIXES)]

_LAB = frozenset({"folder_parts", "full_path_parts", "get_alf_path", "session_path_parts"})
_NAMESPACE = frozenset({"filename_parts", "full_path_parts", "rel_path_parts"})
_WINDOWS_PATH_FUNCTIONS = {"add_uuid_string", "get_alf_path", "remove_uuid_string"}
_WINDOWS_SESSION = _LAB | _WINDOWS_PATH_FUNCTIONS | {"get_session_path", "padded_sequence"}

# Paths on which we deliberately differ from ONE-api (numbered as in the one_flows.alf
# docstring), with the functions that differ.
DIFFERENT: dict[str, frozenset[str]] = {
    # 1. hyphens and dots in lab names
    "cortex-lab/Subjects/algernon/2026-01-03/001/alf/spikes.times.npy": _LAB,
    "cortex-lab/Subjects/algernon/2026-01-03/001": _LAB,
    "/data/my.lab/Subjects/sub/2020-01-01/001/obj.attr.npy": _LAB,
    # 2. session parts on folder boundaries
    "a/foo bar/2020-01-01/001": _LAB | {"is_session_path"},
    "subject/2020-01-01/0001/alf/spikes.times.npy": frozenset({"session_path_parts"}),
    "subject/2020-01-01/0001": frozenset({"get_alf_path", "session_path_parts"}),
    "subject/2020-01-01/12345": frozenset({"get_alf_path", "session_path_parts"}),
    # 3. a namespace is closed by an underscore
    "_trials.intervals.npy": _NAMESPACE,
    "_obj.attr.npy": _NAMESPACE,
    f"{S}/alf/_trials.intervals.npy": frozenset({"full_path_parts", "rel_path_parts"}),
    # 4. no trailing newline
    "obj.attr.npy\n": _NAMESPACE | {"get_alf_path", "is_valid"},
    f"{S}\n": frozenset({"get_alf_path", "is_session_path", "session_path_parts"}),
    # 5. nested collections in folder paths; nothing may follow the collection and revision
    f"{S}/alf/probe00": frozenset({"full_path_parts"}),
    f"{S}/alf/probe00/": frozenset({"full_path_parts"}),
    "x/subject/2020-01-01/001/y/subject2/2020-01-02/002": frozenset({"full_path_parts"}),
    f"{S}/alf/#v1#/alf": frozenset({"full_path_parts"}),
    f"{S}/foo bar/obj.attr.npy": frozenset({"full_path_parts"}),
    f"{S}/alf/#v1#/sub/obj.attr.npy": frozenset({"full_path_parts"}),
    # 6. get_session_path: no wrap-around, ASCII digits only
    "1/x/2020-01-01": frozenset({"get_session_path", "padded_sequence"}),
    "subject/2020-01-01/²": frozenset({"get_session_path"}),
    "subject/2020-01-01/٠٠١": frozenset({"get_session_path", "padded_sequence"}),
    # 7. backslashes are separators
    "C:\\Data\\subject\\2020-01-01\\1\\trials.intervals.npy": _WINDOWS_SESSION
    | {"without_revision"},
    "lab\\Subjects\\subject\\2020-01-01\\001": _WINDOWS_SESSION | {"is_session_path"},
    "alf\\probe00\\spikes.times.npy": frozenset(
        {"full_path_parts", "rel_path_parts", *_WINDOWS_PATH_FUNCTIONS}
    ),
    "subject\\2020-01-01\\001\\alf\\spikes.times.npy": _WINDOWS_SESSION
    | {"rel_path_parts", "without_revision"},
}

TABLE = VALID_DATASETS + FOLDERS + FILENAMES + RELATIVE + ODD + GRID + list(DIFFERENT)


def test_table_is_large_and_unique() -> None:
    assert len(TABLE) >= 150
    assert len(set(TABLE)) == len(TABLE)


@pytest.mark.parametrize("as_type", [str, pathlib.Path], ids=["str", "Path"])
@pytest.mark.parametrize("path", TABLE)
def test_agrees_with_one(path: str, as_type: type, one_disagreements) -> None:
    assert one_disagreements(as_type(path), skip=DIFFERENT.get(path, frozenset())) == []


@pytest.mark.parametrize("path", list(DIFFERENT))
def test_listed_differences_are_real(path: str, one_disagreements) -> None:
    differing = {line.split("(")[0].split(":")[0] for line in one_disagreements(path)}
    assert differing == DIFFERENT[path]
