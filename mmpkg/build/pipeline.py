"""The build: inspect the tarball, make the model, stage once, run the backends side by side.

Everything happens in a private workspace beside the output directory (mmpkg/build/workspace.py);
finished packages are renamed into place. A failed or interrupted build removes what it wrote
and nothing else: other builds into the same directory keep their packages.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from mmpkg.backends import BACKENDS, Backend
from mmpkg.backends.naming import BuiltPackage
from mmpkg.build.inspect import inspect_release
from mmpkg.build.options import BuildOptions
from mmpkg.build.overrides import SettingError, check_against, check_not_secret
from mmpkg.build.spec import Layout, PackageSpec, build_spec
from mmpkg.build.staging import stage_common
from mmpkg.build.workspace import check_output, free_bytes, move_into_out, workspace
from mmpkg.errors import CommandError, UsageError, no_space, output_error
from mmpkg.mattermost.release import OpenTarball, Release
from mmpkg.mattermost.start_refusals import TABLE as START_REFUSALS
from mmpkg.tools.run import ToolGroup, require

log = logging.getLogger("mmpkg")

# Below this much room beyond the release's own size, a tool that failed to write most likely
# ran out of space; rpmbuild then says only "Unable to write header to ...:", with no reason.
SPARE = 1 << 20


def build(tarball: Path | OpenTarball, options: BuildOptions) -> list[BuiltPackage]:
    """Build the packages `options` asks for into the output directory, from a tarball's path or
    from a tarball held open since it was verified.

    Progress goes to the "mmpkg" logger: each stage at INFO, each tool run at DEBUG."""
    # What can be checked without the tarball is, before it is read.
    options.payloads()
    check_output(options.out.absolute())
    layout = Layout()
    _refuse_secrets(options, layout)
    out = options.out.resolve()
    backends = [BACKENDS[f] for f in options.formats]
    for backend in backends:
        require(backend.tool)
    with workspace(out) as work:
        try:
            return _build(tarball, options, layout, work, out)
        except OSError as exc:
            problem = output_error(exc, work.parent)
            if problem is None:
                raise
            raise problem from exc


def _build(
    tarball: Path | OpenTarball, options: BuildOptions, layout: Layout, work: Path, out: Path
) -> list[BuiltPackage]:
    log.info("reading %s", tarball.name)
    release = inspect_release(tarball, extract_to=work / "release")
    _check_settings(options, release)
    spec = build_spec(release, options, layout)
    log.info("staging %s %s (%s)", spec.name, spec.version, spec.arch)
    common = stage_common(spec, work / "release", work / "common")
    backends = [BACKENDS[f] for f in options.formats]
    # Every tree is complete before any tool starts: a new hard link or a utime on a shared
    # inode while dpkg-deb reads it makes tar fail with "file changed as we read it".
    roots = [(b, b.stage(spec, common, work / b.format)) for b in backends]
    # The two native tools then run at the same time, reading the same files. On any exception
    # (a signal, the other format failing) the ToolGroup, left first, stops them at once, before
    # the pool waits for its threads.
    try:
        with ThreadPoolExecutor(max_workers=len(roots)) as pool, ToolGroup() as tools:
            jobs = [pool.submit(tools.call, _package, b, spec, root, work / b.format) for b, root in roots]
            built = [_result(job) for job in jobs]
    except CommandError as exc:
        if _out_of_space(exc, work, release):
            raise no_space(work.parent, str(exc)) from exc
        raise
    paths = move_into_out([b.path for b in built], out)
    return [replace(b, path=path) for b, path in zip(built, paths, strict=True)]


def _result(job: Future[BuiltPackage]) -> BuiltPackage:
    """The job's result, waited for in slices. The kernel may hand SIGINT or SIGTERM to a worker
    thread, which does not wake a main thread blocked on a lock; Python runs the handler, in the
    main thread, only once that thread runs again."""
    while True:
        try:
            return job.result(timeout=0.1)
        except TimeoutError:
            continue


def _package(backend: Backend, spec: PackageSpec, root: Path, work: Path) -> BuiltPackage:
    """One format's package, and its sha256: in the job's thread, so the first package to be
    done is hashed while the other's tool still runs."""
    id = backend.identify(spec.name, spec.version, spec.revision, spec.arch)
    log.info("building %s", id.file)
    path = backend.package(spec, root, work)
    log.info("built %s (%d KiB)", id.file, (path.stat().st_size + 1023) // 1024)
    return BuiltPackage.of(id, path)


def _refuse_secrets(options: BuildOptions, layout: Layout) -> None:
    env_file, shipped = f"{layout.etc}/mattermost.env", f"{layout.share}/overrides.json"
    for key, value in options.settings:
        try:
            check_not_secret(key, value, env_file=env_file, shipped=shipped)
        except SettingError as exc:
            raise UsageError(f"{options.source(key)} {exc}") from exc


def _check_settings(options: BuildOptions, release: Release) -> None:
    """Names and JSON types as the release's own config.json has them, and no value the release
    refuses to start with (mmpkg/mattermost/start_refusals.py): the package would re-apply it on every
    upgrade, and its own guard would refuse every upgrade to it."""
    defaults = json.loads(release.config)
    for key, value in options.settings:
        try:
            note = check_against(key, value, defaults, allow_unknown=options.allow_unknown_settings)
        except SettingError as exc:
            raise UsageError(f"{options.source(key)} {exc}") from exc
        if note:
            log.warning("%s", note)
    overrides = options.overrides()
    for row in START_REFUSALS.settings_for(release.version):
        section = overrides.get(row.section)
        value = section.get(row.key) if isinstance(section, dict) else None
        if row.refuses(release.version, value):
            where = options.source(row.name if row.name in dict(options.settings) else row.section)
            raise UsageError(
                f"{where} {row.name}: Mattermost {release.version} will not start with {json.dumps(value)} "
                f'(upstream: "{row.upstream}"); set it to {row.accepted}, or leave it out'
            )


def _out_of_space(exc: CommandError, work: Path, release: Release) -> bool:
    return "No space left on device" in exc.output or free_bytes(work) < release.unpacked_bytes + SPARE
