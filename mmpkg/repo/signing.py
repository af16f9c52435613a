"""gpg and rpmsign, for InRelease/Release.gpg, repomd.xml.asc and signed rpms (gpg(1), rpmsign(8))."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mmpkg.errors import CommandError, RepoError
from mmpkg.run import run


class Signer:
    """Signs with one secret key from a GnuPG home directory."""

    def __init__(self, key: str, gnupghome: Path) -> None:
        self.key = key
        self.gnupghome = gnupghome
        self.env = {"GNUPGHOME": str(gnupghome)}

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
            self._gpg("--local-user", self.key, "--detach-sign", "--output", os.devnull, "/dev/null")
        except CommandError as exc:
            raise RepoError(
                f"signing key {self.key!r} is missing or cannot sign in {self.gnupghome}"
            ) from exc
        if not listing.startswith("sec") and "\nsec" not in listing:
            raise RepoError(f"signing key {self.key!r} has no secret key in {self.gnupghome}")

    def export(self) -> str:
        return self._gpg("--armor", "--export", "--", self.key)

    def clearsign(self, src: Path, dest: Path) -> None:
        self._gpg(
            "--local-user",
            self.key,
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
            self.key,
            "--digest-algo",
            "SHA256",
            *args,
            "--detach-sign",
            "--output",
            str(dest),
            str(src),
        )

    def sign_rpm(self, rpm: Path) -> None:
        # Debian's rpm looks for /usr/bin/gpg2 unless told otherwise.
        run(
            [
                "rpmsign",
                "--define",
                f"_gpg_name {self.key}",
                "--define",
                "__gpg /usr/bin/gpg",
                "--addsign",
                str(rpm),
            ],
            env=self.env,
        )


def verify(public_key: str, data: Path, signature: Path | None = None) -> bool:
    """Whether `data` (clearsigned) or `data` + `signature` verify against `public_key` only."""
    with tempfile.TemporaryDirectory(prefix="mmpkg-gpg-") as home:
        env = {"GNUPGHOME": home}
        run(["gpg", "--batch", "--import"], env=env, input=public_key)
        args = [str(signature), str(data)] if signature else [str(data)]
        return run(["gpg", "--batch", "--verify", *args], env=env, check=False).returncode == 0


def rpm_is_signed(rpm: Path) -> bool:
    """Whether the rpm carries a header signature: rpm keeps RSA ones in RSAHEADER, and DSA and
    EdDSA ones in DSAHEADER."""
    qf = "%{RSAHEADER:pgpsig}\\n%{DSAHEADER:pgpsig}\\n"
    out = run(["rpm", "-qp", "--nosignature", "--qf", qf, str(rpm)]).stdout.split("\n")
    return any(line.strip() not in ("", "(none)") for line in out)
