"""Who the packages say made them: "Name <email>", given or taken from the environment.

There is no default: a placeholder address in a published package's Maintainer and Packager
fields, and in its changelog, would send every bug report nowhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# deb-control(5) and Debian Policy 5.6.2: a name (no comma, which separates several people),
# then an RFC 5322 address in angle brackets. lintian's malformed-contact checks the same.
_CONTACT = re.compile(r"(?P<name>[^<>,@\s][^<>,@]*?)\s+<(?P<email>[^<>@\s]+@[^<>@\s.]+(?:\.[^<>@\s.]+)+)>")

HOW_TO_GIVE = (
    'give --maintainer "Name <email>", maintainer = "Name <email>" in the build config, '
    "or set DEBFULLNAME and DEBEMAIL"
)


def parse_maintainer(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not _CONTACT.fullmatch(text):
        raise ValueError(f'expected "Name <email>", e.g. "Chat Team <chat-team@example.com>", got {value!r}')
    return text


def maintainer_from_environment(environ: Mapping[str, str]) -> str | None:
    """The variables dch(1) reads: DEBFULLNAME (else NAME) and DEBEMAIL (else EMAIL); DEBEMAIL
    may also hold the whole "Name <email>"."""
    email = environ.get("DEBEMAIL") or environ.get("EMAIL") or ""
    if _CONTACT.fullmatch(email.strip()):
        return email.strip()
    name = environ.get("DEBFULLNAME") or environ.get("NAME") or ""
    if not (name.strip() and email.strip()):
        return None
    return f"{name.strip()} <{email.strip()}>"
