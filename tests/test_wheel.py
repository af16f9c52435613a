"""`pip install mmpkg` works outside the checkout: templates/, debian/ and rpm/ ship in the wheel, and
the sample releases of the tests (sample_release/) do not."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mmpkg import __version__ as mmpkg_version
from mmpkg.mattermost.versions import MattermostVersion
from sample_release import write_sample_release
from tests.support.harness import require

pytestmark = pytest.mark.tools

TOP = Path(__file__).resolve().parent.parent


def test_wheel_carries_the_templates_and_builds_outside_the_checkout(tmp_path: Path) -> None:
    require("dpkg-deb", "rpmbuild", root=False)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(tmp_path / "wheel"),
            str(TOP),
        ],
        check=True,
    )
    (wheel,) = (tmp_path / "wheel").glob("mmpkg-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in (
        "mmpkg/_data/templates/lifecycle.sh.j2",
        "mmpkg/_data/debian/maintscript.j2",
        "mmpkg/_data/rpm/mattermost.spec.j2",
        "mmpkg/_data/rpm/rpmlintrc.toml",
    ):
        assert data in names, data
    assert not [name for name in names if "sample" in name], names
    # The man page and the bash completion, where man and bash-completion look below the prefix.
    data = f"mmpkg-{mmpkg_version}.data/data"
    assert f"{data}/share/man/man1/mmpkg.1" in names, names
    assert f"{data}/share/bash-completion/completions/mmpkg" in names, names
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    # The wheel's mmpkg comes first on the path; its dependencies are the test environment's.
    env = {"PYTHONPATH": str(site), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}

    def mmpkg(*args: str) -> str:
        argv = [sys.executable, "-m", "mmpkg", *args]
        return subprocess.run(argv, cwd=work, env=env, check=True, capture_output=True, text=True).stdout

    where = subprocess.run(
        [sys.executable, "-c", "import mmpkg; print(mmpkg.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(str(site)), where
    tarball = str(write_sample_release(MattermostVersion.parse("10.5.2"), dest=work))
    built = mmpkg("build", tarball, "--formats", "deb", "--maintainer", "A B <a@b.example>").split()
    assert [Path(p).name for p in built] == ["mattermost_10.5.2-1_amd64.deb"]
    assert (work / "dist" / "mattermost_10.5.2-1_amd64.deb").is_file()
