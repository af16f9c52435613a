"""The repository's public keys: `keys/` in the tree, and what gpg says about each key.

keys/FINGERPRINT.asc       one armoured public key per current key
keys/archive-keyring.asc   all of them, armoured (dnf's gpgkey=, the bootstrap)
keys/archive-keyring.gpg   all of them, binary, as `gpg --export` writes it (apt's Signed-By)
keys/keys.json             the current fingerprints, which one signs now, and the keyring
                           package's version, raised with every change of the key set
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mmpkg.errors import CommandError, RepoError, out_of_space
from mmpkg.repo.journal import Transaction
from mmpkg.tools import gpg_home
from mmpkg.tools.run import run

log = logging.getLogger("mmpkg")

KEYS_DIR = "keys"
KEYRING_ASC = f"{KEYS_DIR}/archive-keyring.asc"
KEYRING_GPG = f"{KEYS_DIR}/archive-keyring.gpg"
STATE = f"{KEYS_DIR}/keys.json"
# A key expiring sooner than this is reported: a rotation needs one keyring package upgrade on
# every client before the switch, and clients that update monthly need that long to get it.
EXPIRY_WARNING = timedelta(days=90)


@dataclass(frozen=True)
class KeyInfo:
    fingerprint: str
    uid: str
    created: datetime
    expires: datetime | None
    signing: bool  # the key the repository signs with now


@dataclass(frozen=True)
class KeySet:
    keys: dict[str, str]  # fingerprint -> armoured public key, in the order they were added
    signing: str
    version: int  # of the keyring package


def describe(armoured: str | Path) -> list[tuple[str, str, datetime, datetime | None]]:
    """(fingerprint, first uid, created, expires) of each public key in `armoured`, or in the
    file `armoured` names (armoured or binary)."""
    source = [str(armoured)] if isinstance(armoured, Path) else []
    text = None if isinstance(armoured, Path) else armoured
    with gpg_home.throwaway() as home:
        try:
            out = run(
                ["gpg", "--batch", "--with-colons", "--import-options", "show-only", "--import", *source],
                env={"GNUPGHOME": str(home)},
                input=text,
            ).stdout
        except CommandError as exc:
            if out_of_space(exc):
                raise
            raise RepoError("not an OpenPGP public key") from exc
    found: list[tuple[str, str, datetime, datetime | None]] = []
    pub: list[str] = []
    fpr = uid = ""

    def flush() -> None:
        if pub:
            created = datetime.fromtimestamp(int(pub[5]), UTC)
            expires = datetime.fromtimestamp(int(pub[6]), UTC) if pub[6] else None
            found.append((fpr, uid, created, expires))

    for line in out.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            flush()
            pub, fpr, uid = fields, "", ""
        elif fields[0] == "fpr" and pub and not fpr:
            fpr = fields[9]
        elif fields[0] == "uid" and pub and not uid:
            uid = fields[9]
    flush()
    return found


def warn_expiring(infos: list[KeyInfo], now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    for key in infos:
        if key.expires is not None and key.expires - now < EXPIRY_WARNING:
            when = "expired" if key.expires <= now else "expires"
            log.warning(
                "repository key %s (%s) %s on %s: add the next key and switch to it, or extend it "
                "(gpg --quick-set-expire) and publish it again with mmpkg repo add-key",
                key.fingerprint,
                key.uid,
                when,
                key.expires.date().isoformat(),
            )


def load(tree: Path) -> KeySet | None:
    state = tree / STATE
    if not state.exists():
        return None
    data = json.loads(state.read_text())
    keys = {fpr: (tree / KEYS_DIR / f"{fpr}.asc").read_text() for fpr in data["keys"]}
    return KeySet(keys=keys, signing=data["signing"], version=int(data["version"]))


def infos(keyset: KeySet) -> list[KeyInfo]:
    found = []
    for armoured in keyset.keys.values():
        for fpr, uid, created, expires in describe(armoured):
            found.append(KeyInfo(fpr, uid, created, expires, fpr == keyset.signing))
    return found


def combined(keyset: KeySet) -> tuple[str, bytes]:
    """All current keys as one armoured block and as one binary keyring."""
    with gpg_home.throwaway() as home:
        env = {"GNUPGHOME": str(home)}
        run(["gpg", "--batch", "--import"], env=env, input="".join(keyset.keys.values()))
        fprs = list(keyset.keys)
        armoured = run(["gpg", "--batch", "--armor", "--export", "--", *fprs], env=env).stdout
        binary = home / "keyring.gpg"
        run(["gpg", "--batch", "--output", str(binary), "--export", "--", *fprs], env=env)
        return armoured, binary.read_bytes()


def stage(tx: Transaction, keyset: KeySet) -> None:
    """keys/ for `keyset`, as part of the change `tx` publishes: each file that differs is
    staged and moved into place by the commit, before the indices that it signs."""
    tree = tx.tree
    armoured, binary = combined(keyset)
    state = {"keys": list(keyset.keys), "signing": keyset.signing, "version": keyset.version}
    files = {f"{KEYS_DIR}/{fpr}.asc": text.encode() for fpr, text in keyset.keys.items()}
    files |= {KEYRING_ASC: armoured.encode(), KEYRING_GPG: binary}
    files[STATE] = (json.dumps(state, indent=2) + "\n").encode()
    for rel, data in files.items():
        dest = tree / rel
        if dest.is_file() and dest.read_bytes() == data:
            continue
        staged = tx.path(dest.name)
        staged.write_bytes(data)
        staged.chmod(0o644)
        tx.move(staged, dest)
    for old in (tree / KEYS_DIR).glob("*.asc") if (tree / KEYS_DIR).is_dir() else ():
        if f"{KEYS_DIR}/{old.name}" not in files:
            tx.delete(old)
