"""Hashing a file much larger than the memory bound keeps peak memory flat."""

import hashlib
import subprocess
import sys
import textwrap

GIB = 1 << 30
MEMORY_BOUND = 64 << 20

MEASURE = textwrap.dedent(
    """
    import os, resource, sys
    from one_flows.hashing import hash_files, md5

    path = sys.argv[1]
    def peak():  # ru_maxrss is in KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    before = peak()
    [result] = hash_files([path], workers=2)
    after_batch = peak()
    single = md5(path)
    print(result.md5, single, after_batch - before, peak() - before)
    """
)


def test_hashing_a_1_gib_file_adds_less_than_64_mib_of_memory(tmp_path):
    path = tmp_path / "sparse.bin"
    with path.open("wb") as f:
        f.truncate(GIB)  # sparse: costs no disk, reads back as zeros
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)], check=True, capture_output=True, text=True
    )
    batch_md5, single_md5, batch_growth, total_growth = out.stdout.split()
    expected = hashlib.md5()
    zeros = bytes(16 << 20)
    for _ in range(GIB // len(zeros)):
        expected.update(zeros)
    assert batch_md5 == single_md5 == expected.hexdigest()
    assert int(batch_growth) < MEMORY_BOUND
    assert int(total_growth) < MEMORY_BOUND
