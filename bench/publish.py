"""`make bench` (publish): `mmpkg repo publish` of one release more to an S3 store already holding
fifty, against a full upload of the same tree to an empty prefix.

A repository of `--releases` releases in channel stable (one `repo add` each, `--keep` above
them all, so none is pruned), deb + rpm built from sample releases with bulk (profiles.py), so
that each package weighs about `--package-mb` MB: real ones weigh about 400 MB, and the pool's
bytes are what a publish that sends everything pays for. The store is OpenStack Swift 2.30 with
its S3 API on loopback (tests/support/swift.py), the tests' store. The tree goes to it once
(the initial publish), then in each of `--runs` runs: one release more is added, published to
the same prefix (the incremental publish: only what differs from the state at DEST is sent),
and the same tree published to a fresh, empty prefix (the full upload, mmpkg's own S3 code on
an empty destination: what any tool that does not know what DEST holds sends). Each publish is
`python -m mmpkg repo publish TREE s3://BUCKET/PREFIX --json` in a child process, timed from
outside; its CPU time and peak RSS are the kernel's account of that child (os.wait4). Results
go to bench/results/publish.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mmpkg.mattermost.release import Arch, Edition
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.repo import Repository
from sample_release import write_sample_release
from sample_release.profiles import Profile
from tests.support.packages import Built, PackageFactory
from tests.support.swift import swift_store

CHECKOUT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
SIGN_KEY = "bench@example.com"
CHANNEL = "stable"
BUCKET = "bench-publish"
# A sample release with bulk packs into a .deb or .rpm of about 2/3 of its unpacked bytes (45 %
# already compressed, the rest about three to one).
UNPACKED_PER_PACKAGE_BYTE = 1.5
FILES = 200


@dataclass
class BulkPackages(PackageFactory):
    """The tests' PackageFactory, with sample releases of `profile`'s bulk."""

    profile: Profile = field(default_factory=lambda: Profile("small"))

    def tarball(self, version: str, edition: Edition = Edition.ENTERPRISE, arch: Arch = Arch.AMD64) -> Path:
        dest = self.base / "releases"
        dest.mkdir(parents=True, exist_ok=True)
        return write_sample_release(
            MattermostVersion.parse(version), edition=edition, arch=arch, dest=dest, profile=self.profile
        )


@dataclass(frozen=True)
class Publish:
    wall: float  # seconds
    cpu: float  # user + sys seconds of the mmpkg process
    peak_kib: int
    objects: int  # objects sent
    bytes: int  # bytes sent
    unchanged: int


def versions(count: int) -> list[str]:
    """`count` distinct versions, oldest first: 10.0.0, 10.0.1, ... 10.0.9, 10.1.0, ..."""
    return [f"10.{i // 10}.{i % 10}" for i in range(count)]


def machine() -> dict[str, object]:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu": model,
        "cpus": len(os.sched_getaffinity(0)),
        "ram_gib": round(ram / 2**30, 1),
        "arch": platform.machine(),
        "python": platform.python_version(),
    }


def describe(m: dict[str, Any]) -> str:
    return f"{m['cpu']}, {m['cpus']} CPUs, {m['ram_gib']:.0f} GiB RAM"


def signing_home(work: Path) -> Path:
    home = work / "gnupg"
    home.mkdir(mode=0o700)
    params = "%no-protection\nKey-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n"
    params += f"Name-Real: bench\nName-Email: {SIGN_KEY}\n%commit\n"
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--quiet", "--gen-key"], input=params, text=True, check=True, env=env)
    return home


def publish(tree: Path, dest: str, env: dict[str, str], work: Path) -> Publish:
    """One `mmpkg repo publish`, in a child process of its own: what it sent, and what it took."""
    out = work / "publish.json"
    environ = {
        **os.environ,
        **env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(CHECKOUT), os.environ.get("PYTHONPATH")])),
    }
    argv = [sys.executable, "-m", "mmpkg", "repo", "publish", str(tree), dest, "--json"]
    with out.open("wb") as stdout:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=stdout, env=environ, cwd=CHECKOUT)
        # wait4: the child's own rusage (the interpreter and anything it waited for).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: exit {proc.returncode}")
    facts = json.loads(out.read_text())
    return Publish(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_kib=usage.ru_maxrss,
        objects=len(facts["sent"]),
        bytes=int(facts["bytes"]),
        unchanged=int(facts["unchanged"]),
    )


def tree_size(tree: Path) -> tuple[int, int]:
    """Objects and bytes the tree serves, as a publish lists them."""
    from mmpkg.repo.remote.objects import files

    served = files(tree)
    return len(served), sum(f.size for f in served)


def summary(samples: list[Publish]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in ("wall", "cpu", "peak_kib", "objects", "bytes"):
        values = [float(getattr(s, key)) for s in samples]
        out[key] = statistics.median(values)
        out[f"{key}_min"] = min(values)
        out[f"{key}_max"] = max(values)
    return out


def add(repo: Repository, built: Built, keep: int) -> None:
    repo.add([built.deb, built.rpm], CHANNEL, SIGN_KEY, keep=keep)


def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    names = versions(args.releases + args.runs)
    profile = Profile("publish", unpacked=int(args.package_mb * 1e6 * UNPACKED_PER_PACKAGE_BYTE), files=FILES)
    factory = BulkPackages(work / "packages", profile=profile)
    start = time.perf_counter()
    built = {v: factory.build(v) for v in names}
    build_s = time.perf_counter() - start
    sizes = [p.stat().st_size for b in built.values() for p in (b.deb, b.rpm)]
    print(f"built {len(names)} releases in {build_s:.0f} s", file=sys.stderr)

    repo = Repository(work / "repo", gnupghome=signing_home(work))
    keep = max(100, len(names))  # above every release: retention prunes none
    start = time.perf_counter()
    for v in names[: args.releases]:
        add(repo, built[v], keep)
    add_s = time.perf_counter() - start
    print(f"added {args.releases} releases in {add_s:.0f} s", file=sys.stderr)

    results: dict[str, Any] = {
        "releases": args.releases,
        "runs": args.runs,
        "package_bytes": {"median": statistics.median(sizes), "min": min(sizes), "max": max(sizes)},
        "setup_s": {"build": build_s, "repo_add": add_s},
    }
    with swift_store() as store:
        store.client().create_bucket(Bucket=BUCKET)
        env = store.env()
        dest = f"s3://{BUCKET}/repo"
        objects, size = tree_size(repo.path)
        initial = publish(repo.path, dest, env, work)
        print(f"initial: {initial}", file=sys.stderr)
        results["initial"] = {"tree_objects": objects, "tree_bytes": size, **asdict(initial)}
        incremental: list[Publish] = []
        full: list[Publish] = []
        trees: list[dict[str, int]] = []
        for run in range(args.runs):
            new = names[args.releases + run]
            add(repo, built[new], keep)
            objects, size = tree_size(repo.path)
            trees.append({"release": args.releases + run + 1, "objects": objects, "bytes": size})
            incremental.append(publish(repo.path, dest, env, work))
            print(f"run {run + 1}: incremental {incremental[-1]}", file=sys.stderr)
            full.append(publish(repo.path, f"s3://{BUCKET}/full-{run + 1}", env, work))
            print(f"run {run + 1}: full {full[-1]}", file=sys.stderr)
        # The floor of an incremental publish: nothing new, so only starting, listing the tree
        # and reading the state at DEST.
        nothing = publish(repo.path, dest, env, work)
        print(f"nothing new: {nothing}", file=sys.stderr)
    inc, whole = summary(incremental), summary(full)
    results |= {
        "trees": trees,
        "nothing_new": asdict(nothing),
        "incremental": inc,
        "full": whole,
        "samples": {"incremental": [asdict(s) for s in incremental], "full": [asdict(s) for s in full]},
        "ratios": {
            "time incremental/full": inc["wall"] / whole["wall"],
            "bytes incremental/full": inc["bytes"] / whole["bytes"],
        },
    }
    return results


def _spread(s: dict[str, float], key: str, scale: float = 1.0, digits: int = 2) -> str:
    median, low, high = (s[key + suffix] / scale for suffix in ("", "_min", "_max"))
    if f"{low:.{digits}f}" == f"{high:.{digits}f}":
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({low:.{digits}f} to {high:.{digits}f})"


def markdown(results: dict[str, Any]) -> str:
    initial, inc, full = results["initial"], results["incremental"], results["full"]
    pkg = results["package_bytes"]
    n, runs = results["releases"], results["runs"]
    lines = [
        f"`mmpkg repo publish` to OpenStack Swift 2.30's S3 API on loopback, {describe(results['machine'])}. "
        f"A tree of {n} releases in channel {CHANNEL}, deb + rpm of {pkg['median'] / 1e6:.0f} MB each "
        f"(sample releases with bulk; real ones weigh about 400 MB): {initial['tree_objects']} objects, "
        f"{initial['tree_bytes'] / 1e6:.0f} MB. Medians of {runs} runs (min to max); each run adds one "
        "release, publishes it to the same prefix, then the same tree to an empty one. CPU is user + "
        "sys of the mmpkg process (Swift's own is not counted), peak RSS its own.",
        "",
        "| publish | wall s | CPU s | peak RSS MiB | objects sent | MB sent |",
        "|---|---|---|---|---|---|",
        f"| initial: {n} releases to an empty prefix (one run) | {initial['wall']:.2f} "
        f"| {initial['cpu']:.2f} | {initial['peak_kib'] / 1024:.0f} | {initial['objects']} "
        f"| {initial['bytes'] / 1e6:.1f} |",
    ]
    for label, s in (
        (f"incremental: release {n + 1} to {n + runs} into the {n} published", inc),
        ("full: the same tree to an empty prefix", full),
    ):
        lines.append(
            f"| {label} | {_spread(s, 'wall')} | {_spread(s, 'cpu')} | {_spread(s, 'peak_kib', 1024, 0)} "
            f"| {_spread(s, 'objects', 1, 0)} | {_spread(s, 'bytes', 1e6, 1)} |"
        )
    none = results["nothing_new"]
    lines.append(
        f"| nothing new: the same tree again (one run) | {none['wall']:.2f} | {none['cpu']:.2f} "
        f"| {none['peak_kib'] / 1024:.0f} | {none['objects']} | {none['bytes'] / 1e6:.1f} |"
    )
    ratios = results["ratios"]
    lines += [
        "",
        f"Incremental / full: time {ratios['time incremental/full']:.3f}, bytes "
        f"{ratios['bytes incremental/full']:.4f}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=50, help="releases published first (default: 50)")
    parser.add_argument("--runs", type=int, default=3, help="(default: 3)")
    parser.add_argument(
        "--package-mb", type=float, default=20, help="about what each package weighs (default: 20)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="(default: bench/results)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mmpkg-bench-publish-", dir="/var/tmp") as tmp:
        results = {"machine": machine(), **bench(args, Path(tmp))}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "publish.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (args.out / "publish.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
