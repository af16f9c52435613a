"""`mmpkg repo add` against a growing repository, and what the maintainer scripts add to an upgrade."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from builds import MAINTAINER

from mmpkg.mattermost.versions import MattermostVersion
from sample_release import write_sample_release
from tests.support import harness
from tests.support.scenario import DB_DIR

SIGN_KEY = "bench@example.com"
SCRIPTS = ("preinst", "postinst", "prerm", "postrm", "config", "templates")


def _mmpkg(*args: str | Path, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "mmpkg", "-q", *map(str, args)], check=True, env=env, stdout=subprocess.DEVNULL
    )


def build_deb(version: str, work: Path) -> Path:
    tarball = write_sample_release(MattermostVersion.parse(version), dest=work / "releases")
    out = work / f"deb-{version}"
    _mmpkg("build", tarball, "--out", out, "--maintainer", MAINTAINER, "--formats", "deb")
    return next(out.glob("*.deb"))


def _repack(deb: Path, tree: Path, out: Path, *, version: str | None = None, scripts: bool = True) -> Path:
    """The same package rebuilt by dpkg-deb: under another version, or without its scripts."""
    if not tree.exists():
        subprocess.run(["dpkg-deb", "-R", deb, tree], check=True)
    control = tree / "DEBIAN/control"
    if version is not None:
        lines = control.read_text().splitlines()
        control.write_text(
            "".join(f"Version: {version}\n" if ln.startswith("Version:") else ln + "\n" for ln in lines)
        )
    if not scripts:
        for name in SCRIPTS:
            (tree / "DEBIAN" / name).unlink(missing_ok=True)
    subprocess.run(
        ["dpkg-deb", "-b", "--root-owner-group", "-Zzstd", tree, out], check=True, stdout=subprocess.DEVNULL
    )
    return out


def repo_add(work: Path, sizes: list[int], runs: int) -> dict[str, list[float]]:
    """Seconds `mmpkg repo add` takes for one more .deb into a repository holding each size."""
    home = work / "gnupg"
    home.mkdir(mode=0o700, parents=True)
    env = {**os.environ, "GNUPGHOME": str(home)}
    params = "%no-protection\nKey-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n"
    params += f"Name-Real: bench\nName-Email: {SIGN_KEY}\n%commit\n"
    subprocess.run(["gpg", "--batch", "--quiet", "--gen-key"], input=params, text=True, check=True, env=env)
    deb = build_deb("10.5.2", work)
    debs = work / "debs"
    debs.mkdir()
    revision = iter(range(1, 100_000))

    def copies(n: int) -> list[Path]:
        return [
            _repack(deb, work / "tree", debs / f"{r}.deb", version=f"10.5.2-{r}")
            for r in [next(revision) for _ in range(n)]
        ]

    repo = work / "repo"
    held = 0
    times: dict[str, list[float]] = {}
    for size in sizes:
        # Untimed: fill up to `size` in one call; --keep above every size so nothing is pruned.
        if size > held:
            _mmpkg(
                "repo", "add", repo, *copies(size - held), "--keep", "100000", "--sign-key", SIGN_KEY, env=env
            )
            held = size
        times[str(size)] = []
        for _ in range(runs):
            (one,) = copies(1)
            start = time.perf_counter()
            _mmpkg("repo", "add", repo, one, "--keep", "100000", "--sign-key", SIGN_KEY, env=env)
            times[str(size)].append(time.perf_counter() - start)
            held += 1
    return times


def upgrade_scripts(work: Path, runs: int) -> dict[str, list[float]]:
    """Seconds `dpkg -i` of v2 over v1 takes in a throw-away root, with mmpkg's maintainer
    scripts and with the same two packages rebuilt without them."""
    harness.require("dpkg", "chroot")
    work.mkdir(parents=True)
    v1, v2 = build_deb("10.5.2", work), build_deb("10.6.0", work)
    bare = [_repack(d, work / f"bare-{d.stem}", work / f"bare-{d.name}", scripts=False) for d in (v1, v2)]
    pristine = harness.pristine_root()
    times: dict[str, list[float]] = {"with scripts": [], "without scripts": []}
    for _ in range(runs):
        for label, (old, new) in (("with scripts", (v1, v2)), ("without scripts", tuple(bare))):
            with harness.Root(pristine, name="bench-upgrade") as root:
                root.dpkg("-i", old)
                if label == "with scripts":
                    root.run("install", "-d", "-o", "mattermost", "-g", "mattermost", "-m", "0750", DB_DIR)
                inside = root.copy_in(new)
                start = time.perf_counter()
                root.dpkg("-i", inside)
                times[label].append(time.perf_counter() - start)
    for path in bare:
        path.unlink()
    shutil.rmtree(work / "releases", ignore_errors=True)
    return times
