"""Checking a tarball's detached signature with gpgv, against a keyring of trusted keys only.

gpgv is gpg's verify-only tool: it trusts every key in the keyring it is given and nothing
else (no trust database, no keyserver, no agent), so what it accepts is decided by which keys
go into that keyring, here: those of `trusted` found in the key file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from mmpkg.errors import UpstreamError
from mmpkg.tools import gpg_home
from mmpkg.tools.run import run


def fingerprints(key_file: Path) -> list[str]:
    """The primary keys' fingerprints in an armoured or binary key file, as gpg reads them."""
    with gpg_home.throwaway() as home:
        out = run(
            ["gpg", "--homedir", home, "--batch", "--with-colons", "--import-options", "show-only",
             "--import", key_file],
            check=False,
        ).stdout  # fmt: skip
    found, primary = [], False
    for line in out.splitlines():
        kind = line.split(":", 1)[0]
        if kind in ("pub", "sub"):
            primary = kind == "pub"
        elif kind == "fpr" and primary:
            found.append(line.split(":")[9])
            primary = False
    return found


def trusted_keyring(key_file: Path, trusted: Sequence[str], dest: Path, *, source: str) -> list[str]:
    """Write to `dest` a binary keyring of the keys in `key_file` whose fingerprints are in
    `trusted` (every key if `trusted` is empty); return their fingerprints."""
    present = fingerprints(key_file)
    if not present:
        raise UpstreamError(f"{source} holds no OpenPGP public key")
    wanted = [f for f in present if not trusted or f in trusted]
    if not wanted:
        raise UpstreamError(
            f"{source} is not Mattermost's release-signing key: {', '.join(present)} is not among the "
            f"trusted fingerprints ({', '.join(trusted)}; mmpkg/upstream/release_keys.py)"
        )
    with gpg_home.throwaway() as home:
        run(["gpg", "--homedir", home, "--batch", "--quiet", "--import", key_file])
        run(["gpg", "--homedir", home, "--batch", "--yes", "--output", dest, "--export", *wanted])
    return wanted


def verify(data: BinaryIO, sig: Path, keyring: Path, *, what: str) -> str:
    """The fingerprint of the trusted key that signed what the open file `data` holds; an
    UpstreamError if none did. gpgv reads the file itself (as its standard input, from its
    start), so what is verified is what the caller holds open, whatever its path names."""
    data.seek(0)
    proc = run(["gpgv", "--status-fd", "1", "--keyring", keyring, sig, "-"], stdin=data, check=False)
    status = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("[GNUPG:] ")]
    valid = [s for s in status if s[0] == "VALIDSIG"]
    if proc.returncode == 0 and valid:
        # VALIDSIG's last field is the primary key's fingerprint (a subkey may have signed).
        return valid[0][-1]
    codes = {s[0]: s for s in status}
    if "BADSIG" in codes:
        raise UpstreamError(f"{what}: bad signature: the file is not what its .sig signed (changed since?)")
    if "NO_PUBKEY" in codes or "ERRSIG" in codes:
        key = (codes.get("NO_PUBKEY") or codes["ERRSIG"])[1]
        raise UpstreamError(f"{what}: signed by key {key}, which is not a trusted Mattermost release key")
    if "NODATA" in codes:
        raise UpstreamError(f"{what}: the .sig file is not an OpenPGP signature")
    detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    raise UpstreamError(f"{what}: signature not verified: {detail}")
