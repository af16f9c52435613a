"""The format-neutral installed tree, built once and shared by both backends through hard links.

Hard links cost no copy of the release (however large) and let the deb and rpm builds run at
the same time on the same files.
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

from mmpkg.build.package_model import PackageFile
from mmpkg.build.spec import PackageSpec
from mmpkg.build.templates import render
from mmpkg.mattermost.release import Edition

# Tarball entries that are not part of the installed release: the live configuration moves to
# the server's own directory below /etc (its pristine copy to /usr/share), logs to /var/log.
_NOT_RELEASE = ("config", "logs")


def stage_common(spec: PackageSpec, release: Path, root: Path) -> Path:
    """Move the unpacked `release` into `root` and add everything both formats ship."""
    lay = spec.layout
    prefix = _mkdirs(root, lay.prefix)
    share = _mkdirs(root, lay.share)
    config_dir = release / "config"
    for entry in sorted(release.iterdir()):
        if entry.name not in _NOT_RELEASE:
            entry.rename(prefix / entry.name)
    os.symlink(lay.config, prefix / "config")

    (config_dir / "config.json").rename(share / "config.defaults.json")
    if (config_dir / "cloud_defaults.json").is_file():
        (config_dir / "cloud_defaults.json").rename(share / "cloud_defaults.json")
    # Upstream's note on the configuration directory is documentation.
    if (config_dir / "README.md").is_file():
        doc = _mkdirs(root, f"/usr/share/doc/{spec.name}")
        (config_dir / "README.md").rename(doc / "config-README.md")
    write(share / "install-defaults.json", spec.install_defaults + "\n")
    write(share / "overrides.json", spec.build_overrides + "\n")
    write(share / "version", f"{spec.version}\n")

    write(_mkdirs(root, lay.etc) / "mattermost.env", render("templates/mattermost.env.j2", spec=spec), 0o640)
    write(root / lay.etc.lstrip("/") / "package.conf", render("templates/package.conf.j2", spec=spec))
    man = _mkdirs(root, "/usr/share/man/man8") / "mattermost-pkg.8.gz"
    man.write_bytes(gzip_bytes(render("templates/mattermost-pkg.8.j2", spec=spec).encode()))
    man.chmod(0o644)
    return root


def licence_text(root: Path, spec: PackageSpec) -> str:
    path = root / spec.layout.prefix.lstrip("/") / spec.edition.licence_file
    text = path.read_text(encoding="utf-8", errors="replace")
    if spec.edition is Edition.TEAM and not text.strip():
        return "MIT"
    return text


def stage_format_tree(spec: PackageSpec, common: Path, root: Path, unit_dir: str, **view: object) -> None:
    """A backend's own tree: the common one through hard links, plus the systemd unit and the
    admin command, rendered for the format (`view`), since their service helpers differ."""
    clone_tree(common, root)
    view = {"spec": spec, **view}
    write(root / unit_dir / spec.layout.unit, render("templates/mattermost.service.j2", **view))
    admin = render("templates/mattermost-pkg.j2", context="admin", **view)
    write(root / spec.layout.admin_command.lstrip("/"), admin, 0o755)


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def write_files(root: Path, files: tuple[PackageFile, ...]) -> None:
    for f in files:
        path = root / f.path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.data)
        path.chmod(f.mode)


def _mkdirs(root: Path, absolute: str) -> Path:
    path = root / absolute.lstrip("/")
    path.mkdir(parents=True, exist_ok=True)
    return path


def clone_tree(src: Path, dest: Path) -> None:
    """Recreate `src` at `dest` with hard links to its files (no data copied)."""
    for dirpath, dirnames, filenames in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        target = dest / rel
        target.mkdir(mode=0o755, parents=True, exist_ok=True)
        for name in dirnames + filenames:
            source = Path(dirpath) / name
            if source.is_symlink():
                os.symlink(os.readlink(source), target / name)
            elif name in filenames:
                os.link(source, target / name)


def finish_tree(root: Path, epoch: int) -> int:
    """Fix directory modes and every mtime to `epoch`; return the installed size in KiB."""
    kib = 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            path = Path(dirpath) / name
            if path.is_symlink():
                os.utime(path, (epoch, epoch), follow_symlinks=False)
                kib += 1
                continue
            if name in filenames:
                kib += (path.stat().st_size + 1023) // 1024
            else:
                path.chmod(0o755)
                kib += 1
            os.utime(path, (epoch, epoch))
    os.utime(root, (epoch, epoch))
    return kib


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no name and no timestamp, so the same input always gives the same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(data)
    return buf.getvalue()
