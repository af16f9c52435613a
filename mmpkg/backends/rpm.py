"""The .rpm backend: render a spec for the prebuilt tree, then `rpmbuild -bb` in a private topdir.

References: the rpm spec file format, rpm-scriptlets(7) and Fedora's packaging guidelines
("Scriptlets", "Systemd"). Debian's rpm has no %_unitdir or %systemd_* macros, so the spec
defines what it needs and the scriptlets call systemctl themselves.

`render_package_spec`, `stage_package` and `build_package` make any `Package`
(mmpkg/build/package_model.py); `RpmBackend` is the Mattermost server's: its tree, %files and scriptlets.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from mmpkg.backends.naming import PackageId
from mmpkg.build.package_model import Package, Relations
from mmpkg.build.spec import Need, PackageSpec
from mmpkg.build.staging import finish_tree, licence_text, stage_format_tree, write, write_files
from mmpkg.build.templates import data_dir, render
from mmpkg.errors import UsageError
from mmpkg.mattermost.release import Arch
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.packaging import rpmlib
from mmpkg.packaging.formats import Compression, PackageFormat
from mmpkg.tools.run import run

# The rpm name of each architecture, None for a package that runs on any: the one place they are
# spelled; the dnf repository takes its own from here (mmpkg/repo/dnf.py).
RPM_ARCH = {Arch.AMD64: "x86_64", Arch.ARM64: "aarch64", None: "noarch"}
# zstd on every CPU (T0). Its workers' output does not depend on how many there are, and the
# header records the flags as written, so the package is the same on any machine.
PAYLOAD = {Compression.ZSTD: "w3T0.zstdio", Compression.XZ: "w6.xzdio", Compression.GZIP: "w9.gzdio"}
# rpm's Group: tag, from Debian's section.
GROUP = {"net": "Applications/Communications", "misc": "System Environment/Base"}
REQUIRES = {
    Need.JQ: "jq",
    Need.CURL: "curl",
    Need.RUNUSER: "util-linux",
    Need.SYSTEMD: "systemd",
    # In a full RHEL install, but not in every container image (findutils is missing from some
    # of Rocky's and Fedora's), where the scripts would fail half-way.
    Need.FIND: "findutils",
    Need.AWK: "gawk",
    Need.SED: "sed",
}
# Fedora's and RHEL's pg_dump is in the postgresql package (the server is postgresql-server).
RECOMMENDS = {Need.PG_DUMP: "postgresql"}
# %pre runs useradd and groupadd, and validates config.json with jq before the payload.
REQUIRES_PRE = ("jq", "shadow-utils")
SCRIPTLETS = ("pre", "post", "preun", "postun", "posttrans")
UNIT_DIR = "usr/lib/systemd/system"


# -- any package ----------------------------------------------------------------------------


def package_id(name: str, version: str, arch: Arch | None) -> PackageId:
    """`version` is VERSION-RELEASE."""
    file = f"{name}-{version}.{RPM_ARCH[arch]}.rpm"
    return PackageId(format=PackageFormat.RPM, name=name, version=version, arch=RPM_ARCH[arch], file=file)


def render_package_spec(pkg: Package, template: str = "rpm/package.spec.j2", **view: object) -> str:
    """The spec of `pkg`; its %files are `pkg.files` unless `template` says otherwise."""
    date = datetime.fromtimestamp(pkg.source_date_epoch, UTC)
    return render(template, pkg=pkg, group=GROUP[pkg.section], date=date.strftime("%a %b %d %Y"), **view)


def stage_package(pkg: Package, root: Path) -> Path:
    """Add `pkg.files` to the payload already in `root`."""
    write_files(root, pkg.files)
    finish_tree(root, pkg.source_date_epoch)
    return root


def build_package(pkg: Package, spec_text: str, root: Path, work: Path) -> Path:
    """Run rpmbuild on the staged `root` (the build root); the .rpm goes into `work`."""
    write(work / f"{pkg.name}.spec", spec_text)
    file = package_id(pkg.name, pkg.full_version, pkg.arch).file
    with _without_percent(work) as where:
        _rpmbuild(pkg, root=where / root.relative_to(work), work=where)
        if pkg.targets:
            # Still in the build's workspace: a refused package never reaches the output.
            requires = run(["rpm", "-qp", "--requires", where / file]).stdout.splitlines()
            rpmlib.check(file, requires, pkg.targets)
    return work / file


def _rpmbuild(pkg: Package, *, root: Path, work: Path) -> None:
    specfile = work / f"{pkg.name}.spec"
    top = work / "topdir"
    cmd: list[str | Path] = [
        "rpmbuild",
        "-bb",
        "--quiet",
        "--target",
        RPM_ARCH[pkg.arch],
        "--define",
        f"_topdir {top}",
        "--define",
        f"_rpmdir {work}",
        "--define",
        "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
        # The staged tree is the build root: rpmbuild neither copies it nor, with
        # --noclean and no removal before %install, deletes it under the .deb build.
        "--buildroot",
        root,
        "--noclean",
        "--define",
        "__spec_install_pre %{___build_pre}",
        "--define",
        f"_binary_payload {PAYLOAD[pkg.compression]}",
        # Reproducible: build time and host come from the release. File times are already set
        # (staging.finish_tree); rpm's clamp_mtime_to_source_epoch would touch inodes the
        # .deb build is reading through hard links at the same moment.
        "--define",
        "use_source_date_epoch_as_buildtime 1",
        "--define",
        "_buildhost mmpkg",
        specfile,
    ]  # fmt: skip
    magic = classifier()
    run(cmd, source_date_epoch=pkg.source_date_epoch, env={"MAGIC": str(magic)} if magic else None)


def classifier() -> Path | None:
    """The libmagic database rpmbuild classifies the payload's files with (rpm/classify.magic
    says why it is not file(1)'s); None: libmagic's own."""
    return data_dir() / "rpm" / "classify.magic"


# -- the Mattermost server --------------------------------------------------------------------


def mattermost_package(spec: PackageSpec) -> Package:
    """The server as an .rpm sees it; the staged tree holds its payload and documents."""
    view = {"spec": spec, "fmt": "rpm"}
    return replace(
        spec.package(PackageFormat.RPM),
        relations=Relations(
            pre_depends=REQUIRES_PRE,
            depends=tuple(sorted({REQUIRES[n] for n in spec.needs if n in REQUIRES})),
            recommends=tuple(sorted({RECOMMENDS[n] for n in spec.needs if n in RECOMMENDS})),
            provides=spec.provides,
            conflicts=spec.conflicts,
        ),
        scripts=tuple(
            (name, render("rpm/scriptlet.j2", scriptlet=name, context="maintscript", **view))
            for name in SCRIPTLETS
        ),
        changes=(
            f"Mattermost {spec.version} ({spec.edition} edition), packaged by mmpkg {spec.mmpkg_version}\n"
            f"from the upstream release tarball, sha256 {spec.release_sha256}.",
            f"Release notes: {spec.changelog_url}",
        ),
    )


def release_files(spec: PackageSpec, root: Path) -> list[tuple[str, str]]:
    """The %files lines of the release in the staged `root`, as (kind, path).

    kind is "tree" (a file, a link or a whole directory), "dir" (the directory alone) or
    "rewritten" (spec.rewritten, which carry their own attributes). Fedora wants each path
    listed once, so the directories above a rewritten file are listed entry by entry and
    every other directory whole.
    """
    prefix = spec.layout.prefix
    if not spec.rewritten:
        return [("tree", prefix)]
    above = {str(parent) for rel in spec.rewritten for parent in PurePosixPath(rel).parents}
    entries: list[tuple[str, str]] = []

    def walk(rel: str) -> None:
        entries.append(("dir", prefix if rel == "." else f"{prefix}/{rel}"))
        for name in sorted(os.listdir(root / prefix.lstrip("/") / rel)):
            child = name if rel == "." else f"{rel}/{name}"
            if child in above:
                walk(child)
            else:
                entries.append(("rewritten" if child in spec.rewritten else "tree", f"{prefix}/{child}"))

    walk(".")
    return entries


def render_spec(spec: PackageSpec, files: list[tuple[str, str]]) -> str:
    """The spec; `files` are the release's %files lines (release_files)."""
    return render_package_spec(
        mattermost_package(spec), "rpm/mattermost.spec.j2", spec=spec, release_files=files
    )


class RpmBackend:
    format = PackageFormat.RPM
    tool = "rpmbuild"

    def identify(self, name: str, version: MattermostVersion, revision: int, arch: Arch) -> PackageId:
        return package_id(name, f"{version.package_version}-{revision}", arch)

    def stage(self, spec: PackageSpec, common: Path, work: Path) -> Path:
        root = work / "root"
        stage_format_tree(spec, common, root, UNIT_DIR, fmt="rpm")
        readme = render("templates/README.j2", spec=spec, fmt="rpm")
        write(root / "usr/share/doc" / spec.name / "README", readme)
        write(root / "usr/share/licenses" / spec.name / "LICENSE", licence_text(root, spec))
        # The %ghost files are never in the payload, but rpm records a missing file with the
        # time of the build; stand-ins given the release's time (finish_tree) keep the header
        # reproducible: an empty config.json, and the older packages' name, a link to it now.
        write(root / spec.layout.config.lstrip("/") / "config.json", "", 0o600)
        legacy = root / spec.layout.etc.lstrip("/") / "config.json"
        legacy.symlink_to(f"{PurePosixPath(spec.layout.config).name}/config.json")
        return stage_package(mattermost_package(spec), root)

    def package(self, spec: PackageSpec, root: Path, work: Path) -> Path:
        return build_package(
            mattermost_package(spec), render_spec(spec, release_files(spec, root)), root, work
        )


@contextmanager
def _without_percent(work: Path) -> Iterator[Path]:
    """`work`, as a path rpmbuild can be given.

    rpmbuild expands macros in the spec file's path, in its directories and (twice) in the
    build root, so a % in the output directory's name would change them or run a %(command).
    A link from a private temporary directory reaches the same files under a name without one.
    """
    if "%" not in str(work):
        yield work
        return
    with tempfile.TemporaryDirectory(prefix="mmpkg-rpmbuild-") as private:
        if "%" in private:
            raise UsageError(f"the temporary directory {private} has a % in its name; set TMPDIR")
        link = Path(private) / "work"
        link.symlink_to(work)
        yield link
