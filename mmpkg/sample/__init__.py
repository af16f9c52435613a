"""Sample Mattermost releases for tests: tiny tarballs whose bin/mattermost behaves like the server."""

from __future__ import annotations

from mmpkg.sample.build_info import migration_name, schema_number
from mmpkg.sample.tarball import write_sample_release

__all__ = ["migration_name", "schema_number", "write_sample_release"]
