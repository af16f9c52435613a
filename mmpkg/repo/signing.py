"""gpg and rpmsign, for InRelease/Release.gpg, repomd.xml.asc and signed rpms (gpg(1), rpmsign(8))."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mmpkg.errors import CommandError, RepoError, out_of_space
from mmpkg.tools import gpg_home
from mmpkg.tools.run import require, run


class Signer:
    """Signs with one secret key from a GnuPG home directory."""

    def __init__(self, key: str, gnupghome: Path) -> None:
        self.key = key
        self.gnupghome = gnupghome
        self.env = {"GNUPGHOME": str(gnupghome)}
        self.fingerprint = ""  # of the primary key, once check_usable found exactly one

    @property
    def _user(self) -> str:
        return self.fingerprint or self.key

    def _gpg(self, *args: str) -> str:
        return run(
            ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", *args],
            env=self.env,
        ).stdout

    def check_usable(self) -> None:
        """Refuse a key that is missing, has no secret part or cannot sign."""
        try:
            listing = run(
                ["gpg", "--batch", "--with-colons", "--list-secret-keys", "--", self.key], env=self.env
            ).stdout
            with tempfile.TemporaryDirectory(prefix="mmpkg-probe-") as tmp:
                # Into a file of its own, never --output /dev/null: gpg deletes its output file
                # when it cannot sign (a passphrase it was not given), and run as root it would
                # delete /dev/null itself.
                self._gpg(
                    "--local-user", self.key, "--detach-sign", "--output", f"{tmp}/probe.sig", os.devnull
                )
        except CommandError as exc:
            if out_of_space(exc):
                raise
            raise RepoError(
                f"signing key {self.key!r} is missing or cannot sign in {self.gnupghome} (a key with a "
                "passphrase signs once gpg-agent has it: gpg-preset-passphrase)"
            ) from exc
        lines = [line.split(":") for line in listing.splitlines()]
        secret = [i for i, f in enumerate(lines) if f[0] == "sec"]
        if not secret:
            raise RepoError(f"signing key {self.key!r} has no secret key in {self.gnupghome}")
        if len(secret) > 1:
            raise RepoError(f"signing key {self.key!r} names {len(secret)} keys: give its fingerprint")
        self.fingerprint = next(f[9] for f in lines[secret[0] :] if f[0] == "fpr")

    def export(self) -> str:
        return self._gpg("--armor", "--export-options", "export-minimal", "--export", "--", self._user)

    def clearsign(self, src: Path, dest: Path) -> None:
        self._gpg(
            "--local-user",
            self._user,
            "--digest-algo",
            "SHA256",
            "--clearsign",
            "--output",
            str(dest),
            str(src),
        )

    def detach(self, src: Path, dest: Path, *, armor: bool = True) -> None:
        args = ["--armor"] if armor else []
        self._gpg(
            "--local-user",
            self._user,
            "--digest-algo",
            "SHA256",
            *args,
            "--detach-sign",
            "--output",
            str(dest),
            str(src),
        )

    def sign_rpm(self, rpm: Path, *, resign: bool = False) -> None:
        """Sign `rpm`; `resign` replaces the signatures it has (a retired key's)."""
        # Debian's rpm looks for /usr/bin/gpg2 unless told otherwise: it is told the gpg that
        # mmpkg itself signs with, wherever that was found.
        run(
            [
                "rpmsign",
                "--define",
                f"_gpg_name {self._user}",
                "--define",
                f"__gpg {require('gpg')}",
                "--resign" if resign else "--addsign",
                str(rpm),
            ],
            env=self.env,
        )


def verify(public_key: str, data: Path, signature: Path | None = None) -> bool:
    """Whether `data` (clearsigned) or `data` + `signature` verify against `public_key` only."""
    with gpg_home.throwaway() as home:
        env = {"GNUPGHOME": str(home)}
        run(["gpg", "--batch", "--import"], env=env, input=public_key)
        args = [str(signature), str(data)] if signature else [str(data)]
        return run(["gpg", "--batch", "--verify", *args], env=env, check=False).returncode == 0


def rpm_is_signed(rpm: Path) -> bool:
    # rpm keeps an RSA signature in RSAHEADER and any other (DSA, EdDSA) in DSAHEADER.
    qf = "%{RSAHEADER:pgpsig}\n%{DSAHEADER:pgpsig}"
    out = run(["rpm", "-qp", "--nosignature", "--qf", qf, str(rpm)]).stdout.split("\n")
    return any(line.strip() not in ("", "(none)") for line in out)


def rpm_verifies(rpm: Path, public_keys: list[str]) -> bool:
    """Whether `rpm` is signed, and by one of `public_keys` (armoured, one key each): rpm -K with
    only those keys in a private rpm database."""
    if not rpm_is_signed(rpm):
        return False
    with tempfile.TemporaryDirectory(prefix="mmpkg-rpmdb-") as tmp:
        for i, key in enumerate(public_keys):
            (Path(tmp) / f"{i}.asc").write_text(key)
            run(["rpm", "--dbpath", f"{tmp}/db", "--import", f"{tmp}/{i}.asc"])
        proc = run(["rpm", "--dbpath", f"{tmp}/db", "-K", str(rpm)], check=False)
        # An unsigned rpm passes with "digests OK" alone.
        return proc.returncode == 0 and "signatures OK" in proc.stdout
