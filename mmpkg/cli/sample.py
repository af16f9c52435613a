"""`mmpkg sample-release`: write a sample release tarball and print its path."""

from __future__ import annotations

import argparse

from mmpkg.mattermost.release import Arch, Edition
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.sample import write_sample_release
from mmpkg.sample.profiles import PROFILES


def run_sample_release(args: argparse.Namespace) -> None:
    path = write_sample_release(
        MattermostVersion.parse(args.version),
        edition=Edition(args.edition),
        arch=Arch(args.arch),
        dest=args.dest,
        profile=PROFILES[args.profile],
    )
    print(path)
