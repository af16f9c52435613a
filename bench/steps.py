"""What each change bought: mmpkg's deb + rpm build of one release at several git revisions.

    bench/steps.py [--profile realistic] [--runs 3] REV [REV ...]

Each revision is checked out in a worktree of its own and run from there (PYTHONPATH), on the
same tarball, alternating, so the revisions are compared under the same load. The table goes
to bench/results/steps.md (and .json), one row per revision with its commit's subject.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from builds import MAINTAINER
from measure import Sample, summary, timed

from mmpkg.mattermost.release import Arch, Edition
from mmpkg.mattermost.versions import MattermostVersion
from sample_release import write_sample_release
from sample_release.profiles import PROFILES

CHECKOUT = Path(__file__).resolve().parent.parent
RESULTS = CHECKOUT / "bench" / "results"


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(CHECKOUT), *args], check=True, capture_output=True, text=True
    ).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revisions", nargs="+", metavar="REV")
    parser.add_argument("--profile", default="realistic", choices=sorted(PROFILES))
    parser.add_argument("--runs", type=int, default=3, help="(default: 3)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="(default: bench/results)")
    args = parser.parse_args()
    revs = [git("rev-parse", "--short", f"{r}^{{commit}}").strip() for r in args.revisions]
    with tempfile.TemporaryDirectory(prefix="mmpkg-steps-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        trees = {}
        try:
            for rev in revs:
                trees[rev] = work / rev
                git("worktree", "add", "--detach", str(trees[rev]), rev)
            tarball = write_sample_release(
                MattermostVersion.parse("10.5.2"),
                edition=Edition.ENTERPRISE,
                arch=Arch.AMD64,
                dest=work / "release",
                profile=PROFILES[args.profile],
            )
            samples = _measure(revs, trees, tarball, args.runs, work)
        finally:
            for tree in trees.values():
                subprocess.run(
                    ["git", "-C", str(CHECKOUT), "worktree", "remove", "--force", str(tree)], check=False
                )
    rows = {
        rev: {"subject": git("log", "-1", "--format=%s", rev).strip(), **summary(s)}
        for rev, s in samples.items()
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "steps.json").write_text(
        json.dumps({"profile": args.profile, "runs": args.runs, "revisions": rows}, indent=2) + "\n"
    )
    table = _markdown(rows, args.profile, args.runs)
    (args.out / "steps.md").write_text(table)
    print(table)
    return 0


def _measure(
    revs: list[str], trees: dict[str, Path], tarball: Path, runs: int, work: Path
) -> dict[str, list[Sample]]:
    samples: dict[str, list[Sample]] = {rev: [] for rev in revs}
    for run in range(runs):
        order = revs[run % len(revs) :] + revs[: run % len(revs)]
        for rev in order:
            out = work / "out"
            shutil.rmtree(out, ignore_errors=True)
            argv = [sys.executable, "-m", "mmpkg", "-q", "build", str(tarball), "--out", str(out)]
            env = ["env", f"PYTHONPATH={trees[rev]}"]
            samples[rev].append(timed([[[*env, *argv, "--maintainer", MAINTAINER]]], work))
            print(f"run {run + 1}: {rev} {samples[rev][-1]}", file=sys.stderr)
    return samples


def _markdown(rows: dict[str, dict[str, object]], profile: str, runs: int) -> str:
    lines = [
        f"mmpkg build (deb + rpm, zstd) of the {profile} sample at each revision: "
        f"medians of {runs} runs (min to max).",
        "",
        "| revision | change | wall s | CPU s | peak RSS MiB |",
        "|---|---|---|---|---|",
    ]
    for rev, r in rows.items():
        wall = f"{r['wall']:.2f} ({r['wall_min']:.2f} to {r['wall_max']:.2f})"
        cpu = f"{r['cpu']:.2f} ({r['cpu_min']:.2f} to {r['cpu_max']:.2f})"
        peak = f"{float(str(r['peak_kib'])) / 1024:.0f}"
        lines.append(f"| `{rev}` | {r['subject']} | {wall} | {cpu} | {peak} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
