"""Packages with nothing in them but the fields a test needs, built by dpkg-deb and rpmbuild.

For names, versions and contents that mmpkg itself would never build: a version upstream never
used (10.11.1a), another keyring package than the repository's own, a header forged after the
build (forge_rpm_header).
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
from pathlib import Path

MAINTAINER = "Someone Else <someone@example.invalid>"


def deb(out: Path, name: str, version: str, *, arch: str, files: dict[str, bytes] | None = None) -> Path:
    """A .deb of `name` `version` for `arch` holding `files` (absolute path -> content)."""
    root = out / f"deb-{name}-{version}-{arch}".replace(":", "_")
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: {MAINTAINER}\n"
        "Description: a test package\n"
    )
    for path, data in (files or {}).items():
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_bytes(data)
    deb = out / f"{root.name}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", root, deb], check=True, capture_output=True)
    return deb


def rpm(
    out: Path, name: str, version: str, release: str, arch: str, files: dict[str, bytes] | None = None
) -> Path:
    """An .rpm of `name` `version`-`release` for `arch` (noarch, x86_64, aarch64) holding `files`."""
    top = out.resolve() / f"rpm-{name}-{version}-{release}-{arch}"
    (top / "src").mkdir(parents=True)
    listed = []
    for i, (path, data) in enumerate((files or {}).items()):
        (top / "src" / str(i)).write_bytes(data)
        listed.append((i, path))
    install = "".join(
        f"mkdir -p %{{buildroot}}{Path(path).parent}\ncp {top}/src/{i} %{{buildroot}}{path}\n"
        for i, path in listed
    )
    spec = top / "test.spec"
    spec.write_text(
        f"Name: {name}\nVersion: {version}\nRelease: {release}\nSummary: a test package\nLicense: MIT\n"
        f"Packager: {MAINTAINER}\n"
        + ("BuildArch: noarch\n" if arch == "noarch" else "")
        + "%description\na test package\n%install\n"
        + install
        + "%files\n"
        + "".join(f"{path}\n" for _, path in listed)
    )
    subprocess.run(
        ["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define", "__gpg /usr/bin/gpg",
         *(["--target", arch] if arch != "noarch" else []), spec],
        check=True, capture_output=True, env={"PATH": "/usr/bin:/bin", "HOME": str(top)},
    )  # fmt: skip
    (built,) = (top / "RPMS").rglob("*.rpm")
    return built


# rpm's header structure (rpm's doc/manual/format_header.md): a magic, an index of 16-byte
# entries (tag, type, offset into the store, count), and the store.
_MAGIC = b"\x8e\xad\xe8\x01\x00\x00\x00\x00"
_LEAD = 96
_STRING_TAGS = {"NAME": 1000, "VERSION": 1001, "RELEASE": 1002, "ARCH": 1022}
_SIG_SHA1, _SIG_SHA256, _SIG_MD5 = 269, 273, 1004


def _header(data: bytes, at: int) -> tuple[int, int, list[tuple[int, int, int, int]]]:
    """(offset of the store, end of the header, index entries) of the header at `at`."""
    assert data[at : at + 8] == _MAGIC
    count, size = struct.unpack(">II", data[at + 8 : at + 16])
    index = [struct.unpack(">iiii", data[at + 16 + 16 * i : at + 32 + 16 * i]) for i in range(count)]
    store = at + 16 + 16 * count
    return store, store + size, index


def forge_rpm_header(src: Path, dest: Path, tag: str, value: str) -> Path:
    """A copy of `src` whose header `tag` (NAME, VERSION, RELEASE, ARCH) is `value`, of the same
    length as the original, with the digests of the signature header made to match: rpm -K says
    the package is intact, as an attacker who rebuilt the header would make it."""
    data = bytearray(src.read_bytes())
    sig_store, sig_end, sig_index = _header(bytes(data), _LEAD)
    main = sig_end + (-sig_end % 8)  # the signature header is padded to 8 bytes
    store, end, index = _header(bytes(data), main)
    (offset,) = [o for t, _, o, _ in index if t == _STRING_TAGS[tag]]
    old_end = data.index(b"\0", store + offset)
    if old_end - (store + offset) != len(value):
        raise ValueError(f"{tag} must stay {old_end - store - offset} bytes long, not {len(value)}")
    data[store + offset : old_end] = value.encode()
    header, payload = bytes(data[main:end]), bytes(data[end:])
    digests = {
        _SIG_SHA1: hashlib.sha1(header).hexdigest().encode(),
        _SIG_SHA256: hashlib.sha256(header).hexdigest().encode(),
        _SIG_MD5: hashlib.md5(header + payload).digest(),
    }
    for t, _, o, _ in sig_index:
        if t in digests:
            data[sig_store + o : sig_store + o + len(digests[t])] = digests[t]
    dest.write_bytes(bytes(data))
    return dest
