"""The keys whose signatures make a release tarball Mattermost's, as one table.

A tarball's detached `.sig` is checked against a keyring holding only these keys. The key
itself comes from `--keyring FILE` or from KEY_URL, and a fetched key is used only when its
fingerprint is in this table: the URL can change hands, the fingerprint cannot.

To update: when upstream announces a new release-signing key, add a row with the fingerprint as
upstream publishes it (never as a download prints it) and the page that says so; keep the old
row while releases signed by it are still wanted, and drop it once they are not.
"""

from __future__ import annotations

from dataclasses import dataclass

KEY_URL = "https://deb.packages.mattermost.com/pubkey.gpg"


@dataclass(frozen=True)
class TrustedKey:
    fingerprint: str
    uid: str
    since: str  # when upstream began signing with it
    sources: tuple[str, ...]  # where the fingerprint was read


TRUSTED: tuple[TrustedKey, ...] = (
    # "Mattermost Build <dev-ops@mattermost.com>", rsa2048, created 2017-03-27. It signs the
    # tarballs (the server's own upgrader checks `.sig` files against the copy it embeds) and
    # the apt repository. It expired on 2024-04-06 and upstream re-published the same key with
    # a later expiry; the install guides' "delete the old key A1B31D46..." is about dropping the
    # expired copy before importing the renewed one, not about a new fingerprint. No other
    # release-signing fingerprint is published in upstream's sources.
    TrustedKey(
        fingerprint="A1B31D46F0F3A10B02CF2D44F8F2C31744774B28",
        uid="Mattermost Build <dev-ops@mattermost.com>",
        since="2017-03-27",
        sources=(
            "https://github.com/mattermost/mattermost/blob/master/server/platform/services/upgrader/pubkey.gpg",
            "https://github.com/mattermost/mattermost-omnibus/blob/master/scripts/repo-setup.sh",
            "https://github.com/mattermost/mattermost/issues/27711",
        ),
    ),
)

FINGERPRINTS: tuple[str, ...] = tuple(k.fingerprint for k in TRUSTED)
