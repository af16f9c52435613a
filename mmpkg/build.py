"""The build: inspect the tarball, make the model, stage once, run the backends side by side.

Everything happens in a private directory inside the output directory (same file system, so
finished packages are renamed into place): a failed build leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mmpkg.backends import BACKENDS
from mmpkg.inspect import inspect_release
from mmpkg.options import BuildOptions
from mmpkg.spec import build_spec
from mmpkg.staging import stage_common

log = logging.getLogger("mmpkg")


def build(tarball: Path, options: BuildOptions) -> list[Path]:
    """Build the packages `options` asks for and return their paths in the output directory."""
    out = options.out.resolve()
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".mmpkg-build-", dir=out))
    try:
        release = inspect_release(tarball, extract_to=work / "release")
        spec = build_spec(release, options)
        log.info("building %s %s (%s) from %s", spec.name, spec.version, spec.arch, tarball.name)
        common = stage_common(spec, work / "release", work / "common")
        backends = [BACKENDS[f] for f in options.formats]
        # Every tree is complete before any tool starts: a new hard link or a utime on a shared
        # inode while dpkg-deb reads it makes tar fail with "file changed as we read it".
        roots = [(b, b.stage(spec, common, work / b.format)) for b in backends]
        # The two native tools then run at the same time, reading the same files.
        with ThreadPoolExecutor(max_workers=len(roots)) as pool:
            jobs = [pool.submit(b.package, spec, root, work / b.format) for b, root in roots]
            built = [job.result() for job in jobs]
        finished = []
        for path in built:
            target = out / path.name
            os.replace(path, target)
            finished.append(target)
        return finished
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
