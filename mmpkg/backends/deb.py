"""The .deb backend: DEBIAN/ control files and maintainer scripts, then `dpkg-deb --build`.

References: deb-control(5), deb-conffiles(5), deb-preinst(5) and friends, Debian Policy ch. 6
and 10. `--root-owner-group` makes every file root-owned without fakeroot.

`stage_package` and `build_package` make any `Package` (mmpkg/build/package_model.py); `DebBackend` is the
Mattermost server's: its tree, unit, admin command, documents and lifecycle scripts.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from mmpkg.backends.naming import PackageId
from mmpkg.build import omnibus
from mmpkg.build.package_model import Package, PackageFile, Relations
from mmpkg.build.spec import Need, PackageSpec
from mmpkg.build.staging import (
    finish_tree,
    gzip_bytes,
    licence_text,
    stage_format_tree,
    write,
    write_files,
)
from mmpkg.build.templates import data_dir, render
from mmpkg.mattermost.release import Arch
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.packaging.formats import Compression, PackageFormat
from mmpkg.tools.run import run

# The deb name of each architecture, None for a package that runs on any: the one place they are
# spelled; the apt repository takes its own from here (mmpkg/repo/apt.py).
DEB_ARCH = {Arch.AMD64: "amd64", Arch.ARM64: "arm64", None: "all"}
COMPRESSOR = {Compression.ZSTD: "zstd", Compression.XZ: "xz", Compression.GZIP: "gzip"}
# dpkg-deb gives zstd worker threads only on a machine with more than one CPU, and zstd frames
# its output differently with and without them: one thread keeps the .deb the same everywhere.
# (xz's threaded output does not depend on the thread count; gzip has none.)
THREADS = {Compression.ZSTD: ("--threads-max=1",)}
# util-linux (runuser), findutils and sed are Essential in Debian, so they are not declared; nor
# is awk, which base-files Pre-Depends on (mawk, in every Debian and Ubuntu image).
DEPENDS = {
    Need.JQ: "jq",
    Need.CURL: "curl",
    Need.USER_TOOLS: "passwd",
    Need.RUNUSER: None,
    Need.SYSTEMD: "systemd",
    Need.FIND: None,
    Need.AWK: None,
    Need.SED: None,
}
RECOMMENDS = {Need.PG_DUMP: "postgresql-client"}
# preinst validates config.json with jq before anything is unpacked, and dpkg only guarantees
# a Pre-Depends to be there then.
PRE_DEPENDS = ("jq",)
SCRIPTS = ("preinst", "postinst", "prerm", "postrm")
CONFFILES = ("mattermost.env", "package.conf")
# Made 0755 root:root by base-files' postinst and shipped by no Debian package. A .deb that
# installs below one ships it too (dpkg-deb records every parent), so dpkg takes the package
# for its last owner and removes it with the package once it is empty.
SYSTEM_DIRS = ("/mnt", "/srv", "/opt", "/etc/opt", "/var/opt", "/media")
UNIT_DIR = "lib/systemd/system"


# -- any package ----------------------------------------------------------------------------


def package_id(name: str, version: str, arch: Arch | None) -> PackageId:
    """`version` is VERSION-REVISION."""
    file = f"{name}_{version}_{DEB_ARCH[arch]}.deb"
    return PackageId(format=PackageFormat.DEB, name=name, version=version, arch=DEB_ARCH[arch], file=file)


def render_package_control(pkg: Package, installed_size: int) -> str:
    return render("debian/control.j2", pkg=pkg, deb_arch=DEB_ARCH[pkg.arch], installed_size=installed_size)


def stage_package(pkg: Package, root: Path) -> Path:
    """Add `pkg.files`, the changelog and DEBIAN/ to the payload already in `root`."""
    write_files(root, pkg.files)
    date = datetime.fromtimestamp(pkg.source_date_epoch, UTC)
    changelog = render("debian/changelog.j2", pkg=pkg, date=format_datetime(date))
    log = PackageFile(
        path=f"/usr/share/doc/{pkg.name}/changelog.Debian.gz", data=gzip_bytes(changelog.encode())
    )
    write_files(root, (log,))

    control = root / "DEBIAN"
    control.mkdir()
    for script, text in pkg.scripts:
        write(control / script, text, 0o755)
    if pkg.conffiles:
        write(control / "conffiles", "".join(f"{path}\n" for path in pkg.conffiles))
    known = {path.lstrip("/"): md5 for path, md5 in pkg.known_md5}
    write(control / "md5sums", _md5sums(root, skip={p.lstrip("/") for p in pkg.unchecked}, known=known))
    write(control / "control", render_package_control(pkg, finish_tree(root, pkg.source_date_epoch)))
    finish_tree(control, pkg.source_date_epoch)
    return root


def build_package(pkg: Package, root: Path, out_dir: Path) -> Path:
    """Run dpkg-deb on the staged `root`; the .deb goes into `out_dir` under its usual name."""
    out = out_dir / package_id(pkg.name, pkg.full_version, pkg.arch).file
    cmd: list[str | Path] = [
        "dpkg-deb",
        "--root-owner-group",
        f"-Z{COMPRESSOR[pkg.compression]}",
        *THREADS.get(pkg.compression, ()),
        "--build",
        root,
        out,
    ]  # fmt: skip
    run(cmd, source_date_epoch=pkg.source_date_epoch)
    return out


# -- the Mattermost server --------------------------------------------------------------------


def deb_version(spec: PackageSpec) -> str:
    return f"{spec.version.package_version}-{spec.revision}"


def mattermost_package(spec: PackageSpec, docs: tuple[PackageFile, ...] = ()) -> Package:
    """The server as a .deb sees it; the staged tree holds its payload, `docs` its documents."""
    return replace(
        spec.package(PackageFormat.DEB),
        relations=Relations(
            pre_depends=PRE_DEPENDS,
            depends=tuple(d for d in DEPENDS.values() if d and d not in PRE_DEPENDS),
            # pg_dump backs the database up before a migration; the server may run elsewhere.
            recommends=(RECOMMENDS[Need.PG_DUMP],),
            suggests=("postgresql",),
            provides=spec.provides,
            conflicts=spec.conflicts,
            # apt must first replace mattermost-omnibus by the transitional package, whose
            # removal cannot undo the move (mmpkg/build/omnibus.py); dpkg -i refuses until then.
            breaks=(omnibus.BREAKS,),
            replaces=spec.conflicts,
        ),
        files=(*docs, apt_preferences(spec)),
        conffiles=(*(f"{spec.layout.etc}/{name}" for name in CONFFILES), apt_preferences_path(spec)),
        # What the server rewrites has no fixed content, so no checksum for dpkg --verify and
        # debsums to hold it to (the rpm says so with %verify).
        unchecked=tuple(f"{spec.layout.prefix}/{rel}" for rel in spec.rewritten),
        known_md5=tuple((f"{spec.layout.prefix}/{rel}", md5) for rel, md5 in spec.release_md5),
        scripts=tuple(render_scripts(spec).items()),
        fields=(("Mmpkg-Version", spec.mmpkg_version),),
        changes=(
            f"Mattermost {spec.version} ({spec.edition} edition, {spec.arch}),\n"
            f"packaged by mmpkg {spec.mmpkg_version} from the upstream release tarball, sha256\n"
            f"{spec.release_sha256}.",
            f"Release notes:\n{spec.changelog_url}",
        ),
    )


def apt_preferences_path(spec: PackageSpec) -> str:
    return f"/etc/apt/preferences.d/{spec.name}"


def apt_preferences(spec: PackageSpec) -> PackageFile:
    """The pin that keeps apt from ever choosing Mattermost's own packages (X.Y.Z-0) over this
    one: their preinst would delete the configuration link (docs/administering.md, "Moving from
    Mattermost's own packages")."""
    text = render("debian/apt-preferences.j2", spec=spec, deb_version=deb_version(spec))
    return PackageFile(path=apt_preferences_path(spec), data=text.encode())


def render_control(spec: PackageSpec, installed_size: int) -> str:
    return render_package_control(mattermost_package(spec), installed_size)


def system_dirs(spec: PackageSpec) -> list[str]:
    """The SYSTEM_DIRS this package installs below, which its postrm must put back."""
    lay = spec.layout
    shipped = (lay.prefix, lay.etc, lay.share, lay.admin_command)
    return [d for d in SYSTEM_DIRS if any(p.startswith(f"{d}/") for p in shipped)]


def render_scripts(spec: PackageSpec) -> dict[str, str]:
    """The maintainer scripts, each carrying the lifecycle library and Debian's argument mapping."""
    return {
        script: render(
            "debian/maintscript.j2",
            script=script,
            context="maintscript",
            spec=spec,
            deb_version=deb_version(spec),
            fmt="deb",
            system_dirs=system_dirs(spec),
        )
        for script in SCRIPTS
    }


class DebBackend:
    format = PackageFormat.DEB
    tool = "dpkg-deb"

    def identify(self, name: str, version: MattermostVersion, revision: int, arch: Arch) -> PackageId:
        return package_id(name, f"{version.package_version}-{revision}", arch)

    def stage(self, spec: PackageSpec, common: Path, work: Path) -> Path:
        root = work / "root"
        view = {"deb_version": deb_version(spec), "fmt": "deb"}
        stage_format_tree(spec, common, root, UNIT_DIR, **view)
        docs = self._docs(spec, root, {"spec": spec, **view})
        return stage_package(mattermost_package(spec, docs), root)

    def package(self, spec: PackageSpec, root: Path, work: Path) -> Path:
        return build_package(mattermost_package(spec), root, work)

    def _docs(self, spec: PackageSpec, root: Path, view: dict[str, object]) -> tuple[PackageFile, ...]:
        doc = f"/usr/share/doc/{spec.name}"
        year = datetime.fromtimestamp(spec.source_date_epoch, UTC).year
        copyright_text = render(
            "debian/copyright.j2", year=year, licence_text=licence_text(root, spec), **view
        )
        overrides = (data_dir() / "debian" / "lintian-overrides").read_text(encoding="utf-8")
        overrides = overrides.replace("@PACKAGE@", spec.name).replace("@LICENCE@", spec.edition.licence_file)
        return (
            PackageFile(path=f"{doc}/copyright", data=copyright_text.encode()),
            PackageFile(path=f"{doc}/README", data=render("templates/README.j2", **view).encode()),
            PackageFile(path=f"/usr/share/lintian/overrides/{spec.name}", data=overrides.encode()),
        )


def _md5sums(root: Path, *, skip: set[str], known: dict[str, str]) -> str:
    """md5sums(5) of the regular files below `root`, in path order; `known` spares a read of
    the files whose digest is already there. os.walk does not follow a link to a directory
    (the release's config/ is one, to the server's configuration directory)."""
    found = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                found.append(Path(path).relative_to(root).as_posix())
    lines = []
    for rel in sorted(found, key=lambda rel: rel.split("/")):  # as PurePath orders them
        if rel.startswith("DEBIAN/") or rel in skip:
            continue
        md5 = known.get(rel)
        if md5 is None:
            with (root / rel).open("rb") as fh:
                md5 = hashlib.file_digest(fh, "md5").hexdigest()
        lines.append(f"{md5}  {rel}\n")
    return "".join(lines)
