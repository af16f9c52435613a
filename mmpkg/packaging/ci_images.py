"""The images the CI templates' test job installs the packages on, by default.

The one table of them: the templates' `MMPKG_TEST_IMAGES` defaults and the list in
docs/automating-releases.md are generated from it (mmpkg/docs.py, `make readme`), and
tests/test_ci_templates.py fails when a template says otherwise. They are registry images, as
a CI pulls them; a machine that reaches no registry gives the variable its own images instead
(the template test does: docs/development.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from mmpkg.packaging.formats import PackageFormat


@dataclass(frozen=True)
class TestImage:
    name: str  # as `docker pull` takes it
    package_manager: str  # what installs the package there, as the test job reports it
    why: str

    __test__ = False  # a table row, not a test class pytest should collect


TEST_IMAGES: dict[PackageFormat, tuple[TestImage, ...]] = {
    PackageFormat.DEB: (
        TestImage("ubuntu:24.04", "apt 2.8", "the current Ubuntu LTS"),
        TestImage("debian:13", "apt 3.0", "the current Debian stable"),
    ),
    PackageFormat.RPM: (
        # Not rockylinux:9: Docker Hub's library image of that name stopped following Rocky's
        # minor releases (Rocky publishes rockylinux/rockylinux instead); almalinux:9 is a
        # Docker Official Image rebuilt with every RHEL 9 minor release, for amd64 and arm64.
        TestImage("almalinux:9", "dnf 4", "RHEL 9's rebuild, kept current as a Docker Official Image"),
    ),
}


def default_test_images() -> str:
    """`MMPKG_TEST_IMAGES` as the templates default it: every image of the table, comma-separated."""
    return ",".join(image.name for images in TEST_IMAGES.values() for image in images)
