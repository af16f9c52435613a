"""The model both backends get: what comes from the release and what from the options."""

from __future__ import annotations

from mmpkg.options import BuildOptions
from mmpkg.release import Arch, Edition, Release
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
