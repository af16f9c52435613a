"""The .deb backend: DEBIAN/ control files and maintainer scripts, then `dpkg-deb --build`.

References: deb-control(5), deb-conffiles(5), deb-preinst(5) and friends, Debian Policy ch. 6
and 10. `--root-owner-group` makes every file root-owned without fakeroot.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from mmpkg.backends.naming import PackageId
from mmpkg.options import Compression, PackageFormat
from mmpkg.release import Arch
from mmpkg.resources import data_dir, gzip_bytes, render
from mmpkg.run import run
from mmpkg.spec import Need, PackageSpec
from mmpkg.staging import finish_tree, licence_text, stage_format_tree, write
from mmpkg.versions import MattermostVersion

DEB_ARCH = {Arch.AMD64: "amd64", Arch.ARM64: "arm64"}
COMPRESSOR = {Compression.ZSTD: "zstd", Compression.XZ: "xz", Compression.GZIP: "gzip"}
# util-linux (runuser) is Essential in Debian, so it is not declared.
DEPENDS = {
    Need.JQ: "jq",
    Need.CURL: "curl",
    Need.USER_TOOLS: "passwd",
    Need.RUNUSER: None,
    Need.SYSTEMD: "systemd",
}
# preinst validates config.json with jq before anything is unpacked, and dpkg only guarantees
# a Pre-Depends to be there then.
PRE_DEPENDS = (DEPENDS[Need.JQ],)
SCRIPTS = ("preinst", "postinst", "prerm", "postrm")
CONFFILES = ("mattermost.env", "package.conf")
# Made 0755 root:root by base-files' postinst and shipped by no Debian package. A .deb that
# installs below one ships it too (dpkg-deb records every parent), so dpkg takes the package
# for its last owner and removes it with the package once it is empty.
SYSTEM_DIRS = ("/mnt", "/srv", "/opt", "/etc/opt", "/var/opt", "/media")
UNIT_DIR = "lib/systemd/system"


def deb_version(spec: PackageSpec) -> str:
    return f"{spec.version.package_version}-{spec.revision}"


def render_control(spec: PackageSpec, installed_size: int) -> str:
    return render(
        "debian/control.j2",
        spec=spec,
        deb_version=deb_version(spec),
        deb_arch=DEB_ARCH[spec.arch],
        installed_size=installed_size,
        pre_depends=PRE_DEPENDS,
        depends=[d for d in DEPENDS.values() if d and d not in PRE_DEPENDS],
    )


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
        full = f"{version.package_version}-{revision}"
        file = f"{name}_{full}_{DEB_ARCH[arch]}.deb"
        return PackageId(format=self.format, name=name, version=full, arch=DEB_ARCH[arch], file=file)

    def stage(self, spec: PackageSpec, common: Path, work: Path) -> Path:
        root = work / "root"
        view = {"deb_version": deb_version(spec), "fmt": "deb"}
        stage_format_tree(spec, common, root, UNIT_DIR, **view)
        self._docs(spec, root, {"spec": spec, **view})

        control = root / "DEBIAN"
        control.mkdir()
        for script, text in render_scripts(spec).items():
            write(control / script, text, 0o755)
        write(control / "conffiles", "".join(f"{spec.layout.etc}/{name}\n" for name in CONFFILES))
        # What the server rewrites has no fixed content, so no checksum for dpkg --verify and
        # debsums to hold it to (the rpm says so with %verify).
        rewritten = {f"{spec.layout.prefix.lstrip('/')}/{rel}" for rel in spec.rewritten}
        write(control / "md5sums", _md5sums(root, skip=rewritten))
        write(control / "control", render_control(spec, finish_tree(root, spec.source_date_epoch)))
        finish_tree(control, spec.source_date_epoch)
        return root

    def package(self, spec: PackageSpec, root: Path, work: Path) -> Path:
        out = work / self.identify(spec.name, spec.version, spec.revision, spec.arch).file
        cmd: list[str | Path] = [
            "dpkg-deb",
            "--root-owner-group",
            f"-Z{COMPRESSOR[spec.compression]}",
            "--build",
            root,
            out,
        ]  # fmt: skip
        run(cmd, source_date_epoch=spec.source_date_epoch)
        return out

    def _docs(self, spec: PackageSpec, root: Path, view: dict[str, object]) -> None:
        doc = root / "usr/share/doc" / spec.name
        date = datetime.fromtimestamp(spec.source_date_epoch, UTC)
        changelog = render("debian/changelog.j2", date=format_datetime(date), **view)
        (doc / "changelog.Debian.gz").parent.mkdir(parents=True, exist_ok=True)
        (doc / "changelog.Debian.gz").write_bytes(gzip_bytes(changelog.encode()))
        (doc / "changelog.Debian.gz").chmod(0o644)
        copyright_text = render(
            "debian/copyright.j2", year=date.year, licence_text=licence_text(root, spec), **view
        )
        write(doc / "copyright", copyright_text)
        write(doc / "README", render("templates/README.j2", **view))
        overrides = (data_dir() / "debian" / "lintian-overrides").read_text(encoding="utf-8")
        overrides = overrides.replace("@PACKAGE@", spec.name).replace("@LICENCE@", spec.edition.licence_file)
        write(root / "usr/share/lintian/overrides" / spec.name, overrides)


def _md5sums(root: Path, *, skip: set[str]) -> str:
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("DEBIAN/") or rel in skip:
            continue
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        lines.append(f"{digest.hexdigest()}  {rel}\n")
    return "".join(lines)
