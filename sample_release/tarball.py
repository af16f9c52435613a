"""Write a small synthetic Mattermost release tarball shaped like the real one.

The layout follows what upstream's release build (server/build/release.mk) packs into a real
release tarball: one top directory `mattermost/` written twice (the
per-arch tree with bin/ and logs/ first, then the shared tree), explicit directory entries,
a non-root build user as owner, and the real modes (config.json 0600). bin/mattermost is a
Python program that behaves like the server where a package touches it.

The output is reproducible: member mtimes come from the version, the gzip header carries no
name and mtime 0, so the same arguments always give the same bytes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO

from mmpkg.errors import MmpkgError
from mmpkg.mattermost.release import Arch, Edition, tarball_name
from mmpkg.mattermost.versions import MattermostVersion
from sample_release import elf
from sample_release.build_info import build_date, build_epoch, build_hash, command_help
from sample_release.config_defaults import config_defaults
from sample_release.fake_mattermost import go_json
from sample_release.profiles import BULK_DIRS, PROFILES, BulkFile, Profile, bulk_files, plugin_bundle

# CI builds as an ordinary user; a packager must not trust (or need) tar ownership.
BUILD_UID = 1001
BUILD_USER = "builder"

# (file name part, plugin id, plugin major version) of the prepackaged plugins shipped on amd64.
PLUGINS = (("playbooks", "playbooks", 2), ("calls", "com.mattermost.calls", 1))

# A valid 1x1 PNG.
_LOGO = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@dataclass(frozen=True)
class Entry:
    """One tar member below the top directory; `data` None means a directory."""

    path: str
    data: bytes | None = None
    mode: int = 0o644


def write_sample_release(
    version: MattermostVersion,
    *,
    edition: Edition = Edition.ENTERPRISE,
    arch: Arch = Arch.AMD64,
    dest: Path,
    profile: Profile = PROFILES["small"],
) -> Path:
    """Write `dest/<upstream tarball name>` and return its path; `profile` adds bulk (profiles.py)."""
    target = dest / tarball_name(version, edition, arch)
    entries: list[Entry | BulkFile] = [*_arch_part(version, edition, arch), *_shared_part(version, edition)]
    if profile.bulk:
        entries += [Entry(d) for d in BULK_DIRS]
        entries += bulk_files(version, str(arch), profile)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise MmpkgError(f"cannot write to {dest}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            # Upstream's `tar czf` compresses at gzip's default level; the small sample keeps
            # its original level 9 so its bytes do not change.
            level = 6 if profile.bulk else 9
            _write_tar_gz(out, "mattermost", entries, build_epoch(version), level=level, scratch=Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    return target


def _write_tar_gz(
    out: IO[bytes],
    top: str,
    entries: Iterable[Entry | BulkFile],
    mtime: int,
    *,
    level: int = 9,
    scratch: Path | None = None,
) -> None:
    # No file name and mtime 0 in the gzip header, so the bytes depend on the content only.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=level) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for entry in entries:
            info = tarfile.TarInfo(f"{top}/{entry.path}".rstrip("/"))
            info.mtime = mtime
            info.uid = info.gid = BUILD_UID
            info.uname = info.gname = BUILD_USER
            if isinstance(entry, BulkFile):
                _add_bulk(tar, info, entry, scratch)
            elif entry.data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = entry.mode
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))


def _add_bulk(tar: tarfile.TarFile, info: tarfile.TarInfo, bulk: BulkFile, scratch: Path | None) -> None:
    """Stream a generated member into the archive; a plugin bundle goes through a scratch file."""
    info.mode = bulk.mode
    if not bulk.compressible:
        assert scratch is not None
        bundle = plugin_bundle(bulk, int(info.mtime), scratch.with_suffix(".bundle"))
        try:
            info.size = bundle.stat().st_size
            with bundle.open("rb") as data:
                tar.addfile(info, data)
        finally:
            bundle.unlink()
        return
    info.size = bulk.size
    tar.addfile(info, bulk.source())


def _arch_part(version: MattermostVersion, edition: Edition, arch: Arch) -> Iterator[Entry]:
    """release.mk's package-general (and package-plugins on amd64 only)."""
    yield Entry("")
    yield Entry("bin/")
    yield Entry("bin/mattermost", _server_binary(version, edition, arch), 0o755)
    yield Entry("bin/mmctl", _fake_program("fake_mmctl.sh", version, edition, arch), 0o755)
    yield Entry("logs/")
    if arch is not Arch.AMD64:
        return  # upstream ships no prepackaged plugins for arm64, not even the directory
    yield Entry("prepackaged_plugins/")
    for name, plugin_id, major in PLUGINS:
        plugin_version = f"{major}.{version.major}.{version.minor}"
        bundle = _plugin_bundle(plugin_id, plugin_version, version)
        file_name = f"prepackaged_plugins/mattermost-plugin-{name}-v{plugin_version}-linux-amd64"
        yield Entry(f"{file_name}.tar.gz", bundle)
        yield Entry(f"{file_name}.tar.gz.sig", _fake_signature(bundle))


def _shared_part(version: MattermostVersion, edition: Edition) -> Iterator[Entry]:
    """release.mk's package-prep: config, fonts, templates, i18n, client, notices."""
    enterprise = edition is Edition.ENTERPRISE
    asset = build_hash(version)[:20]  # webpack content hashes change with every release
    yield Entry("")
    yield Entry("config/")
    yield Entry("config/config.json", go_json(config_defaults(version), 2).encode(), 0o600)
    yield Entry("config/README.md", _CONFIG_README.encode())
    if enterprise:
        cloud = {"ServiceSettings": {"EnableLocalMode": True}, "FileSettings": {"DriverName": "amazons3"}}
        yield Entry("config/cloud_defaults.json", go_json(cloud, 2).encode())
    yield Entry("fonts/")
    yield Entry("fonts/nunito-bold.ttf", b"\x00\x01\x00\x00" + bytes(12))
    yield Entry("fonts/OFL.txt", b"SIL OPEN FONT LICENSE Version 1.1 (sample placeholder)\n")
    yield Entry("templates/")
    for template in ("reset_body", "welcome_body"):
        body = f'{{{{define "{template}"}}}}<p>{{{{.Props.Title}}}}</p>{{{{end}}}}\n'
        yield Entry(f"templates/{template}.html", body.encode())
    yield Entry("i18n/")
    for locale, text in (("en", "Sorry, we could not find the page."), ("de", "Seite nicht gefunden.")):
        strings = [{"id": "api.context.404.app_error", "translation": text}]
        yield Entry(f"i18n/{locale}.json", (json.dumps(strings, indent=2) + "\n").encode())
    yield Entry("client/")
    yield Entry("client/root.html", _ROOT_HTML.format(asset=asset).encode())
    yield Entry("client/manifest.json", _WEB_MANIFEST.encode())
    yield Entry(f"client/main.{asset}.css", b".logo{background:url(/static/images/logo.png)}\n")
    yield Entry(f"client/main.{asset}.js", f'console.log("Mattermost {version}");\n'.encode())
    yield Entry("client/images/")
    yield Entry("client/images/logo.png", _LOGO)
    yield Entry(edition.licence_file, _LICENCE[edition].encode())
    yield Entry("NOTICE.txt", b"Mattermost\nCopyright 2015-present Mattermost, Inc.\n")
    yield Entry("README.md", b"# Mattermost\n\nSample release built by mmpkg for tests.\n")
    manifest = f"mattermost {version} {edition} {build_hash(version)}\n"
    yield Entry("manifest.txt", manifest.encode())


def _fake_program(resource: str, version: MattermostVersion, edition: Edition, arch: Arch) -> bytes:
    """The resource with its build constants filled in."""
    values = {
        "BUILD_NUMBER": str(version),
        "VERSION": version.final,
        "ENTERPRISE_READY": "true" if edition is Edition.ENTERPRISE else "false",
        "BUILD_DATE": build_date(version),
        "BUILD_HASH": build_hash(version),
        "ARCH": str(arch),
        "DEFAULTS_JSON": json.dumps(config_defaults(version)),
        "COMMAND_HELP": json.dumps(command_help(version)),
    }
    text = resources.files(__package__).joinpath(resource).read_text()
    for key, value in values.items():
        text = text.replace(f'"@@{key}@@"', json.dumps(value))  # a Python string constant
        text = text.replace(f"@@{key}@@", value)  # inside a comment or a quoted shell word
    if "@@" in text:
        raise AssertionError(f"{resource}: unfilled placeholder")
    return text.encode()


# Where the build values live, by release: the module of the model package whose variables
# LDFLAGS sets (mattermost-server Makefile: `.../mattermost-server/v6/model.BuildNumber` for 6.x
# and 7.x; mattermost/mattermost server/Makefile@001849db: `.../server/public/model` from 8.0).
_MODEL_PACKAGE = (
    ((8, 0), "github.com/mattermost/mattermost/server/public/model"),
    ((6, 0), "github.com/mattermost/mattermost-server/v6/model"),
    ((0, 0), "github.com/mattermost/mattermost-server/v5/model"),
)


def _server_binary(version: MattermostVersion, edition: Edition, arch: Arch) -> bytes:
    """An ELF executable stamped as upstream's release build stamps bin/mattermost
    (sample_release/elf.py), running the sample server."""
    model = next(m for since, m in _MODEL_PACKAGE if (version.major, version.minor) >= since)
    values = {
        "BuildNumber": str(version),
        "BuildDate": build_date(version),
        "BuildHash": build_hash(version),
        "BuildHashEnterprise": build_hash(version) if edition is Edition.ENTERPRISE else "none",
        "BuildEnterpriseReady": "true" if edition is Edition.ENTERPRISE else "false",
    }
    when = time.gmtime(build_epoch(version))[:6]
    return elf.go_binary(
        values, model, arch, _fake_program("fake_mattermost.py", version, edition, arch), date_time=when
    )


def _plugin_bundle(plugin_id: str, plugin_version: str, version: MattermostVersion) -> bytes:
    manifest = {
        "id": plugin_id,
        "version": plugin_version,
        "min_server_version": f"{version.major}.0.0",
        "server": {"executables": {"linux-amd64": "server/dist/plugin-linux-amd64"}},
    }
    entries = [
        Entry(""),
        Entry("plugin.json", (json.dumps(manifest, indent=2) + "\n").encode()),
        Entry("server/"),
        Entry("server/dist/"),
        Entry("server/dist/plugin-linux-amd64", b"#!/bin/sh\nexit 0\n", 0o755),
    ]
    out = io.BytesIO()
    _write_tar_gz(out, plugin_id, entries, build_epoch(version))
    return out.getvalue()


def _fake_signature(data: bytes) -> bytes:
    """Shaped like an armored detached signature; it verifies against nothing."""
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    return f"-----BEGIN PGP SIGNATURE-----\n\n{digest}\n-----END PGP SIGNATURE-----\n".encode()


_CONFIG_README = """\
# config

`config.json` holds the server's settings. The server fills in missing defaults and generated
secrets and writes it back on every start, so keep a copy before upgrading.
"""

_ROOT_HTML = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width,initial-scale=1,maximum-scale=1">'
    '<meta name="robots" content="noindex, nofollow"><meta name="referrer" content="no-referrer">'
    "<title>Mattermost</title>"
    '<meta name="application-name" content="Mattermost">'
    '<link rel="manifest" href="/static/manifest.json">'
    '<meta http-equiv="Content-Security-Policy" content="script-src \'self\' cdn.rudderlabs.com/">'
    '<script id="publicPathInWindowScript"></script>'
    '<link href="/static/main.{asset}.css" rel="stylesheet">'
    '<script defer="defer" src="/static/main.{asset}.js"></script>'
    '</head><body class="font--open_sans"><div id="root"></div></body></html>\n'
)

_WEB_MANIFEST = """\
{
  "name": "Mattermost",
  "short_name": "Mattermost",
  "start_url": "..",
  "display": "standalone",
  "icons": [{"src": "/static/images/logo.png", "sizes": "1x1", "type": "image/png"}]
}
"""

_LICENCE = {
    Edition.ENTERPRISE: "Mattermost Source Available License (sample placeholder text)\n",
    Edition.TEAM: "# MIT License\n\nThe compiled Mattermost Team Edition (sample placeholder text).\n",
}
