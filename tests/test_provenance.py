"""One machine record for runs, benchmarks and reproductions (`cnnzoo.provenance`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import torch

import cnnzoo
from cnnzoo import provenance
from cnnzoo.bench.runner import machine
from cnnzoo.train.rundir import environment

SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
cpu MHz\t\t: 2000.000

processor\t: 1
model name\t: a second processor is not read
"""


def test_cpuinfo_is_parsed_with_its_flags() -> None:
    info = provenance.parse_cpuinfo(SAPPHIRE_RAPIDS)
    assert info["model name"] == "Intel(R) Xeon(R) Platinum 8480+"
    record = provenance.cpu_record(info)
    assert record["cpu"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert record["cpu_flags"] == ["avx2", "fma", "avx512f", "avx512_bf16", "amx_tile",
                                   "amx_bf16", "amx_int8"]  # fmt: skip
    assert provenance.cpu_record({"flags": "fpu sse"})["cpu_flags"] == []


def test_runs_and_benchmarks_record_the_same_machine() -> None:
    run, bench = environment(), machine("cpu")
    assert run["cnnzoo"] == bench["cnnzoo"] == cnnzoo.__version__
    assert run["torch"] == bench["torch"] == torch.__version__
    assert run["cpu"] == bench["cpu"] and run["cpu_count"] == bench["cpu_count"]
    assert set(run["cpu_flags"]) <= set(provenance.CPU_FEATURES)


def test_git_commit_is_this_checkouts() -> None:
    here = Path(provenance.__file__).parent
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True)
    commit = provenance.git_commit()
    if done.returncode != 0:  # an installed copy: no commit to record
        assert commit is None
    else:
        assert commit is not None and commit.split("+")[0] == done.stdout.strip()
