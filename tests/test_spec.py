"""The model both backends get: what comes from the release and what from the options."""

from __future__ import annotations

import dataclasses
import json
from pathlib import PurePosixPath

from mmpkg.build.options import BuildOptions
from mmpkg.build.spec import build_spec
from mmpkg.build.templates import render
from mmpkg.mattermost.release import Arch, Edition, Release
from mmpkg.mattermost.versions import MattermostVersion

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


def test_log_directory_is_the_logging_root() -> None:
    """From 11.4 (10.11.x, 11.2.x, 11.3.x too) the System Console shows only log files below
    MM_LOG_PATH, else below logs/ of the install directory, which the package does not use."""
    spec = build_spec(RELEASE, BuildOptions(maintainer=MAINTAINER))
    logs = json.loads(spec.install_defaults)["LogSettings"]["FileLocation"]
    unit = render("templates/mattermost.service.j2", spec=spec, fmt="deb").splitlines()
    assert f"Environment=MM_LOG_PATH={logs}" in unit
    # Set before the environment file is read, so that the administrator's file can move it.
    assert unit.index(f"Environment=MM_LOG_PATH={logs}") < next(
        i for i, line in enumerate(unit) if line.startswith("EnvironmentFile=")
    )


def test_notification_log_goes_to_the_log_directory_when_the_release_has_one() -> None:
    """An empty NotificationLogSettings.FileLocation puts notifications.log where logs/ would be
    found, else in the working directory: the read-only install directory."""
    with_section = dataclasses.replace(
        RELEASE, config=json.dumps({"NotificationLogSettings": {"FileLocation": ""}})
    )
    defaults = json.loads(build_spec(with_section, BuildOptions(maintainer=MAINTAINER)).install_defaults)
    assert defaults["NotificationLogSettings"] == {"FileLocation": defaults["LogSettings"]["FileLocation"]}
    without = json.loads(build_spec(RELEASE, BuildOptions(maintainer=MAINTAINER)).install_defaults)
    assert "NotificationLogSettings" not in without
