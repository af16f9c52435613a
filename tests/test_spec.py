"""The model both backends get: what comes from the release and what from the options."""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from mmpkg.options import BuildOptions
from mmpkg.release import Arch, Edition, Release
from mmpkg.resources import render
from mmpkg.spec import build_spec
from mmpkg.versions import MattermostVersion

MAINTAINER = "mmpkg tests <mmpkg-tests@example.com>"
RELEASE = Release(
    version=MattermostVersion.parse("10.5.2"),
    edition=Edition.ENTERPRISE,
    arch=Arch.AMD64,
    file_count=24,
    unpacked_bytes=62931,
    tarball_bytes=21345,
    sha256="0" * 64,
    source_date_epoch=1_700_000_000,
    rewritten=("client/root.html",),
)


def test_source_date_epoch_defaults_to_the_release() -> None:
    assert build_spec(RELEASE, BuildOptions(maintainer=MAINTAINER)).source_date_epoch == 1_700_000_000


def test_source_date_epoch_zero_is_a_time_like_any_other() -> None:
    """1970-01-01 is what some reproducible pipelines pin; it must not fall back to the release."""
    assert (
        build_spec(RELEASE, BuildOptions(maintainer=MAINTAINER, source_date_epoch=0)).source_date_epoch == 0
    )


def test_local_mode_socket_is_in_the_units_runtime_directory() -> None:
    """Upstream's default socket, /var/tmp/mattermost_local.socket, is inside the unit's
    PrivateTmp= and so hidden from `mmctl --local` on the host: the package puts it in
    /run/mattermost, the unit's RuntimeDirectory=, which root on the host sees."""
    spec = build_spec(RELEASE, BuildOptions(maintainer=MAINTAINER))
    socket = json.loads(spec.install_defaults)["ServiceSettings"]["LocalModeSocketLocation"]
    unit = render("templates/mattermost.service.j2", spec=spec, fmt="deb").splitlines()
    runtime = next(line.partition("=")[2] for line in unit if line.startswith("RuntimeDirectory="))
    assert PurePosixPath(socket).parent == PurePosixPath("/run") / runtime
    assert "RuntimeDirectoryMode=0750" in unit
    assert "PrivateTmp=true" in unit
