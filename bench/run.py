"""`make bench`: mmpkg's build against nfpm and the floor, repo add, and the maintainer scripts.

For each profile (`python -m sample_release --profile`), every contender runs `--runs` times,
alternating, in one run of this script, so each ratio compares runs under the same load.
Results go to bench/results/latest.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from builds import CONTENDERS, contender
from extras import repo_add, upgrade_scripts
from measure import Sample, summary
from report import markdown, plot

from mmpkg.build.inspect import inspect_release
from mmpkg.mattermost.release import Arch, Edition
from mmpkg.mattermost.versions import MattermostVersion
from sample_release import write_sample_release
from sample_release.profiles import PROFILES

VERSION = "10.5.2"
RESULTS = Path(__file__).parent / "results"


def bench_builds(profile: str, runs: int, work: Path) -> dict[str, object]:
    tarball = write_sample_release(
        MattermostVersion.parse(VERSION),
        edition=Edition.ENTERPRISE,
        arch=Arch.AMD64,
        dest=work / profile,
        profile=PROFILES[profile],
    )
    release = inspect_release(tarball)
    measure = {name: contender(name, tarball, VERSION, work) for name in CONTENDERS}
    samples: dict[str, list[Sample]] = {name: [] for name in CONTENDERS}
    for run in range(runs):
        # Rotate the order, so no contender always runs first (cold cache) or last.
        order = CONTENDERS[run % len(CONTENDERS) :] + CONTENDERS[: run % len(CONTENDERS)]
        for name in order:
            samples[name].append(measure[name]())
            print(f"{profile} run {run + 1}: {name} {samples[name][-1]}", file=sys.stderr)
    tarball.unlink()
    stats = {name: summary(s) for name, s in samples.items()}
    wall = {name: s["wall"] for name, s in stats.items()}
    return {
        "unpacked_bytes": release.unpacked_bytes,
        "tarball_bytes": release.tarball_bytes,
        "files": release.file_count,
        "contenders": stats,
        "samples": {name: [vars(x) for x in s] for name, s in samples.items()},
        "ratios": {
            "mmpkg/nfpm": wall["mmpkg"] / wall["nfpm"],
            "mmpkg/nfpm-tree": wall["mmpkg"] / wall["nfpm-tree"],
            "mmpkg/floor": wall["mmpkg"] / wall["floor"],
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="small,realistic", help="(default: small,realistic)")
    parser.add_argument("--runs", type=int, default=3, help="(default: 3)")
    parser.add_argument("--repo-sizes", default="10,50,200", help="(default: 10,50,200)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="(default: bench/results)")
    args = parser.parse_args()
    profiles = args.profiles.split(",")
    if unknown := set(profiles) - set(PROFILES):
        parser.error(f"unknown profiles: {', '.join(sorted(unknown))}")
    results: dict[str, object] = {
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()},
        "runs": args.runs,
        "version": VERSION,
    }
    with tempfile.TemporaryDirectory(prefix="mmpkg-bench-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        results["builds"] = {p: bench_builds(p, args.runs, work) for p in profiles}
        adds = repo_add(work / "repo-add", [int(n) for n in args.repo_sizes.split(",")], args.runs)
        results["repo_add"] = {n: _stats(t) for n, t in adds.items()}
        results["upgrade"] = {k: _stats(t) for k, t in upgrade_scripts(work / "upgrade", args.runs).items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (args.out / "latest.md").write_text(table)
    plot(results, args.out / "latest.png")
    print(table)
    return 0


def _stats(times: list[float]) -> dict[str, float]:
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


if __name__ == "__main__":
    raise SystemExit(main())
