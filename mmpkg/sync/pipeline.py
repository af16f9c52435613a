"""`mmpkg sync`: every upstream release the repository lacks, fetched, verified, built, published.

The repository's own listing is the state: what a channel lacks is each (version, edition,
arch) the channel rules send there with no deb or no rpm of it in `Repository.list` (leaving
out what retention would withdraw at once, which would otherwise come back on every run).
There is nothing else to drift or to lose, and a second run does nothing. The plan reads it
through a Listing (mmpkg/repo/listing.py), the tree's or its served indices' (`sync URL
--plan`, mmpkg/repo/served.py), and says the same of both. One run at a time
holds REPO/.mmpkg/sync.lock, so two runs at once do not both build; the second then finds
nothing to do. A release that fails (a bad signature, a build error) is reported and left
for the next run; the others go on.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mmpkg.build.options import BuildOptions
from mmpkg.build.pipeline import build
from mmpkg.errors import MmpkgError, UpstreamError, cannot_make
from mmpkg.mattermost.release import Arch, Edition
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.packaging.formats import PackageFormat
from mmpkg.repo import Entry, Repository, keyring
from mmpkg.repo.journal import PRIVATE
from mmpkg.repo.listing import Listing
from mmpkg.repo.packages import DEB_TO_RPM_ARCH, place
from mmpkg.repo.retention import to_prune, upstream_version
from mmpkg.repo.served import Served
from mmpkg.sync.channels import DEFAULT, Rules
from mmpkg.upstream import API_URL, RELEASES_URL, Http, check_cache, held, releases, trusted_keys
from mmpkg.upstream.http import check

log = logging.getLogger("mmpkg")


@dataclass(frozen=True)
class Item:
    version: MattermostVersion
    edition: Edition
    arch: Arch
    channels: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.version} ({self.edition.package_name} {self.arch})"


@dataclass(frozen=True)
class Failure:
    item: Item
    error: str
    exit_code: int


@dataclass
class SyncResult:
    published: list[Item] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    notify_error: str | None = None
    pruned: list[Entry] = field(default_factory=list)  # what retention withdrew on the way


@dataclass(frozen=True)
class Upstream:
    """Where releases come from, and who is trusted to sign them."""

    api_url: str = API_URL
    base_url: str = RELEASES_URL
    keyring: Path | None = None
    cache: Path | None = None
    http: Http = field(default_factory=Http)


@dataclass(frozen=True, kw_only=True)
class Wanted:
    """Which releases a sync takes, and into what (the flags of `mmpkg sync`)."""

    since: MattermostVersion
    editions: Sequence[Edition] = (Edition.ENTERPRISE,)
    arches: Sequence[Arch] = (Arch.AMD64,)
    rules: Rules = DEFAULT
    include_rc: bool = False
    keep: int | None = None  # None: each channel's stored --keep, else retention.KEEP


def listing(where: Path | str, wanted: Wanted, upstream: Upstream | None = None) -> Listing:
    """What a plan reads of the repository `where`: a tree on disk, or (a str) its URL, of
    which the channels `wanted`'s rules send releases to are read."""
    if isinstance(where, Path):
        return Repository(where)
    channels = wanted.rules.reachable(include_rc=wanted.include_rc)
    return Served(where, channels, http=(upstream or Upstream()).http)


def plan(repo: Listing, wanted: Wanted, upstream: Upstream | None = None) -> list[Item]:
    """What the repository `repo` lacks of upstream's releases, oldest first: what `sync`
    would publish (and a CI pipeline builds, one job per edition and architecture)."""
    up = upstream or Upstream()
    found = releases(api_url=up.api_url, since=wanted.since, include_rc=wanted.include_rc, http=up.http)
    items = [
        Item(
            r.version,
            edition,
            arch,
            tuple(wanted.rules.channels_for(r.version, include_rc=wanted.include_rc)),
        )
        for r in sorted(found)
        for edition in wanted.editions
        for arch in wanted.arches
    ]
    return lacking(repo, [i for i in items if i.channels], wanted.keep)


def previous(repo: Listing, item: Item) -> MattermostVersion | None:
    """The newest release of `item`'s package older than it in any of its channels: what a
    server runs before upgrading to it, for the container tests."""
    name = item.edition.package_name
    found = set()
    for channel in item.channels:
        for e in repo.list(channel) if channel in repo.channels() else []:
            if e.name == name and e.format == "deb":
                # A version upstream never used (published by hand) is no release to start from.
                with contextlib.suppress(MmpkgError):
                    found.add(upstream_version(e))
    older = [v for v in found if v < item.version]
    return max(older) if older else None


def sync(
    tree: Path,
    wanted: Wanted,
    *,
    sign_key: str,
    maintainer: str,
    upstream: Upstream | None = None,
    notify: str | None = None,
) -> SyncResult:
    up = upstream or Upstream()
    result = SyncResult()
    with _locked(tree):
        missing = plan(Repository(tree), wanted, up)
        if missing:
            check_cache(up.cache)  # one error for the run, not one for each release
            keys = trusted_keys(up.keyring, http=up.http)
        for item in missing:
            try:
                pruned = _publish(
                    tree, item, keys, up, sign_key=sign_key, maintainer=maintainer, keep=wanted.keep
                )
                result.published.append(item)
                result.pruned += pruned
            except MmpkgError as exc:
                log.warning("%s: %s", item, exc)
                result.failed.append(Failure(item, str(exc), exc.exit_code))
    if notify and (result.published or result.failed):
        result.notify_error = _notify(up.http, notify, message(tree, result))
    return result


def _notify(http: Http, hook: str, text: str) -> str | None:
    """What went wrong posting `text` to the webhook, if anything. The hook's URL is a secret:
    messages show its scheme and host only. Its answer has the exchange's deadline, and a
    redirect is not followed (a 307 would post the message again, wherever it points)."""
    try:
        check(http.post(hook, what="--notify", secret=True, json={"text": text}), "--notify", secret=True)
    except UpstreamError as exc:
        return str(exc)
    return None


def lacking(repo: Listing, items: list[Item], keep: int | None = None) -> list[Item]:
    """The items some channel of theirs lacks (as channels narrowed to those), each channel
    keeping `keep` versions, else its stored --keep."""
    wanted = []
    channels = {c for item in items for c in item.channels}
    listed = {c: repo.list(c) for c in channels}
    for item in items:
        absent = [c for c in item.channels if not _present(listed[c], item)]
        kept = [c for c in absent if not _pruned_at_once(listed[c], item, repo.keep(c, keep))]
        if kept:
            wanted.append(Item(item.version, item.edition, item.arch, tuple(kept)))
        elif absent:
            log.info("%s: older than what %s keeps; not published", item, ", ".join(absent))
    return wanted


def _entries(item: Item) -> list[Entry]:
    """The two files of `item` as the repository would list them, revision 1."""
    name, version = item.edition.package_name, f"{item.version.package_version}-1"
    return [
        Entry(name, version, str(item.arch), "deb", Path(f"{name}_{version}_{item.arch}.deb")),
        Entry(name, version, DEB_TO_RPM_ARCH[item.arch], "rpm", Path(f"{name}-{version}.rpm")),
    ]


def _present(entries: list[Entry], item: Item) -> bool:
    have = {(e.name, e.format, e.arch, e.version.rpartition("-")[0]) for e in entries}
    return all((e.name, e.format, e.arch, e.version.rpartition("-")[0]) in have for e in _entries(item))


def _pruned_at_once(entries: list[Entry], item: Item, keep: int) -> bool:
    # The keyring package is no Mattermost version: retention leaves it to Repository.add.
    servers = [e for e in entries if e.name != keyring.NAME]
    new = _entries(item)
    return all(e in to_prune([*servers, *new], keep) for e in new)


def prunes(repo: Listing, items: list[Item], keep: int | None = None) -> list[list[Entry]]:
    """What retention would withdraw as each of `items` (lacking()'s) is published, in order,
    as sync() publishes them: `sync --plan`'s account of what a run would remove."""
    listed = {c: [e for e in repo.list(c) if e.name != keyring.NAME] for i in items for c in i.channels}
    found = []
    for item in items:
        gone: list[Entry] = []
        for channel in item.channels:
            new = _placed(item)
            pruned = to_prune([*listed[channel], *new], repo.keep(channel, keep))
            listed[channel] = [e for e in [*listed[channel], *new] if e not in pruned]
            gone += [e for e in pruned if e not in new]
        found.append(gone)
    return found


def _placed(item: Item) -> list[Entry]:
    """The files of `item` where the repository would store them (once, for all its channels:
    the shared pool), revision 1."""
    name, version = item.edition.package_name, f"{item.version.package_version}-1"
    deb, rpm = str(item.arch), DEB_TO_RPM_ARCH[item.arch]
    return [
        Entry(name, version, deb, "deb", place("deb", name, version, deb)),
        Entry(name, version, rpm, "rpm", place("rpm", name, version, rpm)),
    ]


def _publish(
    tree: Path, item: Item, keys: bytes, up: Upstream, *, sign_key: str, maintainer: str, keep: int | None
) -> list[Entry]:
    log.info("%s: fetching", item)
    fetching = held(
        item.version, keys=keys, edition=item.edition, arch=item.arch, base_url=up.base_url,
        cache=up.cache, http=up.http,
    )  # fmt: skip
    with fetching as found, tempfile.TemporaryDirectory(prefix="mmpkg-sync-") as out:
        log.info("%s: building", item)
        built = build(found.tarball, BuildOptions(maintainer=maintainer, out=Path(out)))
        paths = [b.path for b in built if b.id.format in (PackageFormat.DEB, PackageFormat.RPM)]
        repo = Repository(tree)
        pruned = []
        for channel in item.channels:
            log.info("%s: publishing in %s", item, channel)
            pruned += repo.add(paths, channel, sign_key, keep=keep).withdrawn
        return pruned


@contextlib.contextmanager
def _locked(tree: Path) -> Iterator[None]:
    private = tree / PRIVATE
    try:
        private.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot_make(exc, "repository", tree) from None
    with open(private / "sync.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def message(tree: Path, result: SyncResult) -> str:
    """The run's one message: what reached which channel, and what failed and why."""
    lines = [f"mmpkg sync {tree.name}:"]
    lines += [f"- published {item} in {', '.join(item.channels)}" for item in result.published]
    lines += [f"- FAILED {f.item}: {f.error}" for f in result.failed]
    return "\n".join(lines)
