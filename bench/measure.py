"""Run commands in a fresh child process and read the kernel's account of everything it ran."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# The child runs each stage's commands at the same time, stage after stage, waits for every
# process, then prints RUSAGE_CHILDREN: CPU time summed over the whole tree, and ru_maxrss, the
# peak RSS of the largest process in it (the kernel keeps no sum of peaks).
_CHILD = (
    "import resource, subprocess, sys, json\n"
    "for stage in json.loads(sys.argv[1]):\n"
    "    procs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL) for argv in stage]\n"
    "    if any(p.wait() for p in procs): sys.exit(1)\n"
    "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps([r.ru_utime + r.ru_stime, r.ru_maxrss]))\n"
)

Stage = list[list[str]]


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float  # user + sys seconds of the process tree
    peak_kib: int


def timed(stages: list[Stage], cwd: Path) -> Sample:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(stages)],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    cpu, peak = json.loads(proc.stdout)
    return Sample(wall, cpu, peak)


def summary(samples: list[Sample]) -> dict[str, float]:
    """Median, min and max of each quantity."""
    out: dict[str, float] = {}
    for key in ("wall", "cpu", "peak_kib"):
        values = [float(getattr(s, key)) for s in samples]
        out[key] = statistics.median(values)
        out[f"{key}_min"] = min(values)
        out[f"{key}_max"] = max(values)
    return out
