"""`python -m sample_release VERSION`, from the checkout: write a sample release tarball and print
its path. For trying a build without a real release; the packages it gives are not Mattermost."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from mmpkg.errors import MmpkgError
from mmpkg.mattermost.release import Arch, Edition
from mmpkg.mattermost.versions import MattermostVersion
from sample_release.profiles import PROFILES
from sample_release.tarball import write_sample_release


def _version(text: str) -> MattermostVersion:
    try:
        return MattermostVersion.parse(text)
    except MmpkgError as exc:
        # argparse reports this as a usage error, naming the argument.
        raise argparse.ArgumentTypeError(str(exc)) from None


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m sample_release", description=__doc__, allow_abbrev=False)
    top.add_argument("version", type=_version, metavar="VERSION", help="X.Y.Z or X.Y.Z-rcN")
    top.add_argument("--edition", choices=[e.value for e in Edition], default=Edition.ENTERPRISE.value)
    top.add_argument("--arch", choices=[a.value for a in Arch], default=Arch.AMD64.value)
    top.add_argument(
        "--dest", type=Path, default=Path("."), metavar="DIR", help="where to write (default: .)"
    )
    top.add_argument(
        "--profile",
        choices=list(PROFILES),
        default="small",
        help="small: the tiny sample; realistic: shaped like a real release (about 650 MB unpacked, "
        "3,000 files); large: about 2 GB (default: small)",
    )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    path = write_sample_release(
        args.version,
        edition=Edition(args.edition),
        arch=Arch(args.arch),
        dest=args.dest,
        profile=PROFILES[args.profile],
    )
    print(path)
    return 0
