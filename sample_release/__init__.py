"""Sample Mattermost releases for tests, `make demo` and the benchmark: tiny tarballs whose
bin/mattermost behaves like the server. Not part of the mmpkg wheel."""

from __future__ import annotations

from sample_release.build_info import migration_name, schema_number
from sample_release.tarball import write_sample_release

__all__ = ["migration_name", "schema_number", "write_sample_release"]
