"""Sample data: a small, realistic tree of ALF sessions for demos, tutorials and tests.

The tree has the `lab/Subjects/subject/date/number` layout of a lab server: several labs, subjects
and sessions, raw behaviour and video data, processed `alf/` datasets with nested probe
collections, a `#revision#` folder, and a `create_me.flag` in every session, as an acquisition rig
leaves them. Contents are deterministic for a given seed.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LABS: dict[str, tuple[str, ...]] = {
    "cortexlab": ("KS022", "KS023"),
    "hoferlab": ("SWC_043",),
}
FIRST_DATE = datetime.date(2026, 1, 5)
REVISION = "2026-02-01"


@dataclass(frozen=True)
class SampleTree:
    """What `make_sample_tree` wrote: the root and one path per session, relative to the root."""

    root: Path
    sessions: tuple[Path, ...]

    @property
    def n_files(self) -> int:
        return sum(1 for s in self.sessions for p in (self.root / s).rglob("*") if p.is_file())


def _save(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, data)


def _write_session(session: Path, rng: np.random.Generator, n_trials: int, probes: int) -> None:
    raw = session / "raw_behavior_data"
    raw.mkdir(parents=True, exist_ok=True)
    settings = {"PYBPOD_PROTOCOL": "_iblrig_tasks_trainingChoiceWorld6.4.2", "NTRIALS": n_trials}
    (raw / "_iblrig_taskSettings.raw.json").write_text(json.dumps(settings, indent=1))
    with open(raw / "_iblrig_taskData.raw.jsonable", "w") as fh:
        for trial in range(n_trials):
            fh.write(
                json.dumps({"trial_num": trial + 1, "choice": int(rng.choice([-1, 1]))}) + "\n"
            )
    video = session / "raw_video_data"
    video.mkdir(parents=True, exist_ok=True)
    (video / "_iblrig_leftCamera.raw.mp4").write_bytes(rng.bytes(64 * 1024))

    alf = session / "alf"
    starts = np.cumsum(rng.uniform(2.0, 6.0, n_trials))
    _save(
        alf / "_ibl_trials.intervals.npy", np.c_[starts, starts + rng.uniform(0.5, 1.5, n_trials)]
    )
    _save(alf / "_ibl_trials.choice.npy", rng.choice([-1.0, 1.0], n_trials))
    _save(alf / "_ibl_trials.feedbackType.npy", rng.choice([-1.0, 1.0], n_trials))
    _save(alf / "_ibl_trials.contrastLeft.npy", rng.choice([0.0, 0.25, 1.0, np.nan], n_trials))
    n_wheel = 20 * n_trials
    _save(alf / "_ibl_wheel.timestamps.npy", np.linspace(0.0, float(starts[-1]), n_wheel))
    _save(alf / "_ibl_wheel.position.npy", np.cumsum(rng.normal(0, 0.01, n_wheel)))
    for probe in range(probes):
        collection = alf / f"probe{probe:02d}"
        n_spikes, n_clusters = 5000, 40
        _save(collection / "spikes.times.npy", np.sort(rng.uniform(0, float(starts[-1]), n_spikes)))
        _save(collection / "spikes.clusters.npy", rng.integers(0, n_clusters, n_spikes))
        _save(collection / "spikes.amps.npy", rng.uniform(20e-6, 300e-6, n_spikes))
        _save(collection / "clusters.depths.npy", rng.uniform(0, 3840, n_clusters))
        _save(collection / "clusters.channels.npy", rng.integers(0, 384, n_clusters))
        (collection / "probes.description.json").write_text(
            json.dumps([{"label": f"probe{probe:02d}"}])
        )
    if probes:
        # A re-spike-sorted probe: the new output sits in a revision folder beside the original.
        revised = alf / "probe00" / f"#{REVISION}#"
        _save(revised / "spikes.times.npy", np.sort(rng.uniform(0, float(starts[-1]), 4800)))
        _save(revised / "spikes.clusters.npy", rng.integers(0, 38, 4800))
    (session / "create_me.flag").touch()


def make_sample_tree(
    root: str | Path,
    *,
    sessions_per_subject: int = 2,
    n_trials: int = 60,
    seed: int = 0,
) -> SampleTree:
    """Write sample sessions under `root` (created if needed) and return what was written.

    Each subject gets `sessions_per_subject` days, with a second session on the first day. Existing
    files with the same names are overwritten; nothing else under `root` is touched.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    written: list[Path] = []
    for lab, subjects in LABS.items():
        for subject in subjects:
            for day in range(sessions_per_subject):
                date = (FIRST_DATE + datetime.timedelta(days=day)).isoformat()
                numbers = (1, 2) if day == 0 else (1,)
                for number in numbers:
                    rel = Path(lab, "Subjects", subject, date, f"{number:03d}")
                    probes = 2 if (day == 0 and number == 1) else 0
                    _write_session(root / rel, rng, n_trials, probes)
                    written.append(rel)
    return SampleTree(root=root, sessions=tuple(written))
