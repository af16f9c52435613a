"""`make bench` (downtime): how long an upgrade keeps the site down, against the database's size.

For each size, a database of chat-like rows (posts, channels, file info, with their indexes) on
one real PostgreSQL 15 cluster (tests/support/pgserver.py, the host's, on loopback), and for
each contender a fresh copy of it (CREATE DATABASE ... TEMPLATE) and a fresh Debian 12 root
booted with systemd, in which the sample server V1 runs as the package installs it. Then the
upgrade to V2, while a host thread pings the server every 50 ms:

- upstream's procedure: stop the server, pg_dump -Fc, replace the release, start it (the
  package's upgrade with its own dump switched off stands for "replace"; the server was stopped,
  so it starts it only when told);
- mmpkg 0.8.0 (BASELINE, built from git): its dump, pg_dump -Fc, after the stop;
- this mmpkg with MMPKG_DB_BACKUP_STRICT=1: pg_dump -Fd --jobs after the stop;
- this mmpkg as installed (apt from a served repository): the same dump before the stop; then
  `mattermost-pkg rollback`, timed, against a plain `pg_restore --jobs` of the same dump into an
  empty database.

Downtime is from the first failed ping to the first answer of V2. The dump's and the migration's
times come from the package's log (to the millisecond), the upstream procedure's dump from its
own clock. Beside them, the dump methods PostgreSQL offers, on the same database: what
PostgreSQL can do for the database's owner, and the file-level copy only a role with CREATEDB
can make, and only with no other session on the database. Results go to
bench/results/downtime.{json,md,png}; `--sizes` picks fewer.
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from builds import MAINTAINER

from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.repo import Repository
from sample_release import write_sample_release
from tests.support import harness
from tests.support.pgserver import PG_BIN, SUPERUSER, PgDatabase, PgServer, pg_server
from tests.support.repo_client import CONF, RepoClient
from tests.support.scenario import BACKUPS, Site, free_port
from tests.test_repo import _serve
from tests.test_systemd import PingMonitor, ping

V1, V2 = "10.5.2", "10.11.1"
# mmpkg 0.8.0, the release before the dump left the outage: pg_dump -Fc after the stop.
BASELINE = "b4b922a"
SIZES_MIB = (10, 1024, 4096)
RESULTS = Path(__file__).parent / "results"
SIGN_KEY = "bench@example.com"
UNIT = "mattermost.service"
LOG = "/var/log/mattermost/package-upgrade.log"
LONG = 4 * 3600.0  # no step of a 4 GB run takes this long; a hung one still ends
CONTENDERS = ("upstream procedure", "mmpkg 0.8.0", "strict", "default")
JOBS = min(os.cpu_count() or 1, 8)  # what the package's MMPKG_DB_JOBS=0 gives on this machine


@dataclass
class Outcome:
    contender: str
    size_mib: float
    downtime_s: float
    dump_s: float | None
    dump_mib: float | None
    dump_in_outage: bool
    migrate_s: float | None
    rollback_s: float | None = None
    pg_restore_s: float | None = None


# ---- the database ---------------------------------------------------------------------------

# A few hundred words of chat, cut at a different place and length for each row: text that
# compresses as messages do, without a random() per row.
CHAT = (
    "morning all, the deploy went out at nine and the dashboards look fine so far. can someone "
    "check the payments queue? it backed up around eight but drained after the restart. thanks "
    "for the quick review on the migration, merging it now. lunch at twelve? the new place on "
    "the corner has a patio. reminder: retro moves to thursday this week because of the offsite. "
    "I pushed a fix for the flaky login test, it was a timezone thing again. has anyone seen the "
    "error rate spike on the search cluster? looks like a noisy neighbour, opening a ticket with "
    "the provider. the release notes draft is in the channel header, comments welcome before five. "
    "congrats to the support team, first response time halved this quarter. shipping the mobile "
    "build to the beta group tonight, expect a notification tomorrow morning. "
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (id bigserial PRIMARY KEY, createat bigint NOT NULL, message text NOT NULL);
ALTER TABLE posts ADD COLUMN IF NOT EXISTS channelid bigint, ADD COLUMN IF NOT EXISTS userid char(26);
CREATE INDEX IF NOT EXISTS idx_posts_channel_createat ON posts (channelid, createat);
CREATE TABLE IF NOT EXISTS channels (
    id bigserial PRIMARY KEY, teamid char(26), name text, displayname text, purpose text, createat bigint
);
CREATE TABLE IF NOT EXISTS fileinfo (
    id bigserial PRIMARY KEY, postid bigint, name text, path text, mimetype text, size bigint, createat bigint
);
CREATE INDEX IF NOT EXISTS idx_fileinfo_postid ON fileinfo (postid);
"""


def sql(
    server: PgServer, text: str, *, database: str = "postgres", user: str = SUPERUSER, password: str = ""
) -> str:
    env = harness.host_env({"PGPASSWORD": password or server.password})
    argv: list[harness.StrPath] = [
        PG_BIN / "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
        "-p", str(server.port), "-U", user, "-d", database, "-c", text,
    ]  # fmt: skip
    return harness.run_host(argv, env=env, timeout=LONG).stdout.strip()


def as_owner(db: PgDatabase, text: str) -> str:
    return sql(db.server, text, database=db.name, user=db.user, password=db.password)


def size_mib(db: PgDatabase) -> float:
    return int(as_owner(db, "SELECT pg_database_size(current_database())")) / 2**20


def add_rows(db: PgDatabase, first: int, last: int) -> None:
    """Posts first..last, a channel for every 1,000 and a file for every 10, as the owner."""
    chat = CHAT.replace("'", "''")
    as_owner(
        db,
        f"""
        INSERT INTO posts (createat, channelid, userid, message)
        SELECT 1600000000000 + g * 1000, 1 + g / 1000, lpad(to_hex(g % 5000), 26, 'u'),
               substr('{chat}', (1 + (g * 37) % 500)::int, (20 + (g * 11) % 300)::int) || ' ' || md5(g::text)
        FROM generate_series({first}::bigint, {last}) g;
        INSERT INTO channels (teamid, name, displayname, purpose, createat)
        SELECT lpad(to_hex(g % 40), 26, 't'), 'channel-' || g, 'Channel ' || g,
               substr('{chat}', (1 + (g * 13) % 500)::int, 60), 1600000000000 + g
        FROM generate_series({first // 1000 + 1}::bigint, {last // 1000}) g;
        INSERT INTO fileinfo (postid, name, path, mimetype, size, createat)
        SELECT g, 'IMG_' || g || '.jpg', '20260101/teams/' || md5(g::text) || '/IMG_' || g || '.jpg',
               'image/jpeg', 40000 + (g * 7919) % 4000000, 1600000000000 + g * 1000
        FROM generate_series({first}::bigint, {last}, 10) g;
        """,
    )


def populate(db: PgDatabase, target_mib: int) -> float:
    """The database grown to at least `target_mib` MiB; returns its size."""
    as_owner(db, SCHEMA)
    done, chunk = 0, 5_000
    while (now := size_mib(db)) < target_mib:
        add_rows(db, done + 1, done + chunk)
        done += chunk
        grown = size_mib(db) - now
        # Rows per MiB from what the last chunk took, up to 2M a statement.
        per_mib = chunk / max(grown, 0.01)
        chunk = max(10_000, min(2_000_000, int((target_mib - size_mib(db)) * per_mib) + 1))
    as_owner(db, "VACUUM ANALYZE")
    return size_mib(db)


def copy_of(template: PgDatabase, name: str) -> PgDatabase:
    sql(template.server, f"CREATE DATABASE {name} TEMPLATE {template.name} OWNER {template.user}")
    return PgDatabase(server=template.server, name=name, user=template.user, password=template.password)


def drop(db: PgDatabase) -> None:
    sql(db.server, f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def du_mib(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def dump_methods(db: PgDatabase, work: Path) -> list[dict[str, Any]]:
    """What each way of copying the same database takes, from the host."""
    env = harness.host_env({"PGPASSWORD": db.password})
    conn = ["-h", "127.0.0.1", "-p", str(db.server.port), "-U", db.user, "--no-password"]
    out: list[dict[str, Any]] = []
    methods: list[tuple[str, list[str], bool]] = [
        ("pg_dump -Fc (mmpkg 0.8.0, upstream's advice)", ["-Fc"], False),
        ("pg_dump -Fd --jobs=1", ["-Fd", "--jobs=1"], True),
        (f"pg_dump -Fd --jobs={JOBS} (mmpkg now)", ["-Fd", f"--jobs={JOBS}"], True),
        (f"pg_dump -Fd --jobs={JOBS} -Z1 (fastest gzip)", ["-Fd", f"--jobs={JOBS}", "-Z1"], True),
        (f"pg_dump -Fd --jobs={JOBS} -Z0 (no compression)", ["-Fd", f"--jobs={JOBS}", "-Z0"], True),
    ]
    for label, options, directory in methods:
        target = work / "method"
        shutil.rmtree(target, ignore_errors=True)
        if not directory:
            target.mkdir()
            target = target / "dump"
        argv: list[harness.StrPath] = [PG_BIN / "pg_dump", *conn, *options, "-f", target, db.name]
        start = time.perf_counter()
        harness.run_host(argv, env=env, timeout=LONG)
        took = time.perf_counter() - start
        out.append({"method": label, "seconds": took, "mib": du_mib(target), "online": True})
        shutil.rmtree(work / "method", ignore_errors=True)
    # A file-level copy: a superuser's (or CREATEDB's), with no other session on the source.
    took = timed(lambda: sql(db.server, f"CREATE DATABASE bench_filecopy TEMPLATE {db.name}"))
    sql(db.server, "DROP DATABASE bench_filecopy")
    out.append(
        {
            "method": "CREATE DATABASE ... TEMPLATE (needs CREATEDB and the server stopped)",
            "seconds": took,
            "mib": None,
            "online": False,
        }
    )
    return out


# ---- one contender in a booted root ----------------------------------------------------------


@contextmanager
def booted(name: str) -> Iterator[harness.Root]:
    with harness.Root(harness.pristine_root(), name=name) as root:
        box = harness.Booted(root).start()
        try:
            yield root
        finally:
            box.stop()


def serve_v1(root: harness.Root, db: PgDatabase) -> str:
    """V1 (installed) configured for `db` and started; its ping URL."""
    port = free_port()
    Site(root).set_env(
        MM_SERVICESETTINGS_LISTENADDRESS=f"127.0.0.1:{port}", MM_SQLSETTINGS_DATASOURCE=db.dsn()
    )
    root.run("systemctl", "start", UNIT, timeout=LONG)
    url = f"http://127.0.0.1:{port}/api/v4/system/ping"
    harness.wait_until(lambda: _answers(url, V1), timeout=120, what=f"{V1} answering")
    return url


def _answers(url: str, version: str) -> bool:
    try:
        return ping(url) == version
    except (OSError, ValueError):
        return False


def outage(url: str, upgrade: Callable[[], object]) -> float:
    """Seconds from the first failed ping to the first answer of V2, around `upgrade`."""
    with PingMonitor(url, interval=0.05) as monitor:
        upgrade()
        harness.wait_until(
            lambda: any(p.version == V2 for p in monitor.probes), timeout=LONG, what=f"{V2} answering"
        )
    found = monitor.outages()
    if not found:
        return 0.0
    last_up = found[-1][1]
    assert last_up is not None and last_up.version == V2, found
    return last_up.end - found[0][0].start


def log_times(root: harness.Root) -> tuple[float | None, float | None]:
    """The dump's and the migration's seconds from the package's log."""
    text = root.read_text(LOG) if root.exists(LOG) else ""
    dump = None
    if m := re.search(r"pg_dump started (\S+), finished (\S+);", text):
        dump = _epoch(m[2]) - _epoch(m[1])
    elif m := re.search(r"KiB in (\d+) s", text):
        dump = float(m[1])
    migrate = None
    if m := re.search(r"db migrate, exit 0 in (\d+\.\d+) s", text):
        migrate = float(m[1])
    return dump, migrate


def _epoch(stamp: str) -> float:
    whole, _, fraction = stamp.removesuffix("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{fraction or 0}")


def snapshot_dump(root: harness.Root) -> Path | None:
    base = root.path(BACKUPS)
    for snap in sorted(base.glob("*_to_*"), reverse=True):
        for name in ("database", "database.dump"):
            if (snap / name).exists():
                return snap / name
    return None


def dpkg_i(root: harness.Root, deb: Path, **env: str) -> None:
    inside = root.copy_in(deb)
    root.run(
        "env", *(f"{k}={v}" for k, v in env.items()), "dpkg", *harness.CONF_OLD, "-i", inside, timeout=LONG
    )


def run_contender(
    name: str,
    template: PgDatabase,
    size: float,
    debs: dict[str, dict[str, Path]],
    served: tuple[Repository, str],
) -> Outcome:
    db = copy_of(template, f"bench_{re.sub(r'[^a-z0-9]', '_', name)}")
    try:
        with booted(f"bench-{name.replace(' ', '-')}") as root:
            if name == "default":
                repo, url = served
                client = RepoClient(root, "deb")
                client.install_from(repo, url, V1)
            else:
                dpkg_i(root, debs["baseline" if name == "mmpkg 0.8.0" else "current"][V1])
            ping_url = serve_v1(root, db)
            manual_dump: float | None = None
            new = debs["baseline" if name == "mmpkg 0.8.0" else "current"][V2]
            if name == "upstream procedure":

                def upgrade() -> None:
                    nonlocal manual_dump
                    root.run("systemctl", "stop", UNIT, timeout=LONG)
                    manual_dump = timed(
                        lambda: root.run(
                            "env", f"PGPASSWORD={db.password}", "pg_dump", "-Fc", "-h", "127.0.0.1",
                            "-p", str(db.server.port), "-U", db.user, "-f", "/root/backup.dump", db.name,
                            timeout=LONG,
                        )
                    )  # fmt: skip
                    dpkg_i(root, new, MMPKG_DB_BACKUP="0")
                    root.run("systemctl", "start", UNIT, timeout=LONG)

            elif name == "default":

                def upgrade() -> None:
                    root.run("apt-get", "install", "-y", *CONF, f"mattermost={V2}-1", timeout=LONG)

            else:
                if name == "strict":
                    root.write_text("/etc/mattermost/package.conf", "MMPKG_DB_BACKUP_STRICT=1\n")

                def upgrade() -> None:
                    dpkg_i(root, new)

            down = outage(ping_url, upgrade)
            dump_s, migrate_s = log_times(root)
            dump_path = (
                root.path("/root/backup.dump") if name == "upstream procedure" else snapshot_dump(root)
            )
            result = Outcome(
                contender=name,
                size_mib=size,
                downtime_s=down,
                dump_s=manual_dump if manual_dump is not None else dump_s,
                dump_mib=du_mib(dump_path) if dump_path is not None else None,
                dump_in_outage=name != "default",
                migrate_s=migrate_s,
            )
            if name == "default" and dump_path is not None:
                rollback = ("mattermost-pkg", "rollback", "--yes")
                result.rollback_s = timed(lambda: root.run(*rollback, timeout=LONG))
                fresh = f"bench_restore_{os.getpid()}"
                sql(db.server, f"CREATE DATABASE {fresh} OWNER {db.user}")
                env = harness.host_env({"PGPASSWORD": db.password})
                argv: list[harness.StrPath] = [
                    PG_BIN / "pg_restore", "-h", "127.0.0.1", "-p", str(db.server.port), "-U", db.user,
                    "--no-password", "--no-owner", "--no-privileges", "--exit-on-error", f"--jobs={JOBS}",
                    "-d", fresh, dump_path,
                ]  # fmt: skip
                result.pg_restore_s = timed(lambda: harness.run_host(argv, env=env, timeout=LONG))
                sql(db.server, f"DROP DATABASE {fresh}")
            print(f"{size:.0f} MiB {name}: {result}", file=sys.stderr)
            return result
    finally:
        drop(db)


# ---- packages --------------------------------------------------------------------------------


def build_debs(work: Path) -> dict[str, dict[str, Path]]:
    """V1 and V2 as .debs, by this mmpkg and by BASELINE's."""
    baseline = work / "baseline-src"
    baseline.mkdir()
    archive = subprocess.run(["git", "archive", BASELINE], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", baseline], input=archive, check=True)
    out: dict[str, dict[str, Path]] = {"current": {}, "baseline": {}}
    for version in (V1, V2):
        tarball = write_sample_release(MattermostVersion.parse(version), dest=work / "releases")
        for which, source in (("current", Path.cwd()), ("baseline", baseline)):
            dest = work / f"{which}-{version}"
            env = {**os.environ, "PYTHONPATH": str(source)}
            subprocess.run(
                [sys.executable, "-m", "mmpkg", "-q", "build", str(tarball), "--out", str(dest),
                 "--maintainer", MAINTAINER, "--formats", "deb"],
                check=True, cwd=source, env=env, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            out[which][version] = next(dest.glob("*.deb"))
    return out


@contextmanager
def served_repository(work: Path, debs: dict[str, Path]) -> Iterator[tuple[Repository, str]]:
    home = work / "gnupg"
    home.mkdir(mode=0o700)
    params = "%no-protection\nKey-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\n"
    params += f"Name-Real: bench\nName-Email: {SIGN_KEY}\n%commit\n"
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--quiet", "--gen-key"], input=params, text=True, check=True, env=env)
    repo = Repository(work / "repo", gnupghome=home)
    repo.add([debs[V1], debs[V2]], "stable", SIGN_KEY)
    with _serve(repo.path) as url:
        yield repo, url


# ---- report ----------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Downtime of an upgrade from {V1} to {V2} ({results['machine']}); PostgreSQL {results['postgres']} "
        "with fsync off, the tests' cluster; one run each. Downtime: first failed ping to the first "
        "answer of the new version (pinged every 50 ms).",
        "",
    ]
    for size in results["sizes"]:
        lines += [
            f"**{size['size_mib']:.0f} MiB database**",
            "",
            "| contender | downtime s | dump s | dump in the outage | dump MiB | migration s | rollback s "
            "| plain pg_restore s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for o in size["outcomes"]:
            lines.append(
                f"| {o['contender']} | {_s(o['downtime_s'])} | {_s(o['dump_s'])} | "
                f"{'yes' if o['dump_in_outage'] else 'no'} | {_s(o['dump_mib'])} | {_s(o['migrate_s'])} | "
                f"{_s(o['rollback_s'])} | {_s(o['pg_restore_s'])} |"
            )
        lines += ["", "| copying the same database | s | MiB | while the server runs |", "|---|---|---|---|"]
        for m in size["methods"]:
            lines.append(
                f"| {m['method']} | {_s(m['seconds'])} | {_s(m['mib'])} | {'yes' if m['online'] else 'no'} |"
            )
        lines.append("")
    lines += ["Targets:", ""]
    for size in results["sizes"]:
        by = {o["contender"]: o for o in size["outcomes"]}
        d = by.get("default")
        if d is None:
            continue
        budget = (d["migrate_s"] or 0) + 5
        lines.append(
            f"- {size['size_mib']:.0f} MiB: downtime {d['downtime_s']:.2f} s "
            f"{'within' if d['downtime_s'] <= budget else 'over'} migration + 5 s ({budget:.2f} s)"
            + (
                f"; rollback {d['rollback_s']:.2f} s = "
                f"{d['rollback_s'] / d['pg_restore_s']:.2f} x a plain pg_restore"
                if d["rollback_s"] and d["pg_restore_s"]
                else ""
            )
        )
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    sizes = [s["size_mib"] for s in results["sizes"]]
    for name in CONTENDERS:
        points = [
            (s["size_mib"], o["downtime_s"])
            for s in results["sizes"]
            for o in s["outcomes"]
            if o["contender"] == name
        ]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=name)
    migration = [
        (s["size_mib"], o["migrate_s"] + 5)
        for s in results["sizes"]
        for o in s["outcomes"]
        if o["contender"] == "default" and o["migrate_s"] is not None
    ]
    if migration:
        ax.plot(*zip(*migration, strict=True), linestyle="--", color="grey", label="target: migration + 5 s")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [f"{s:.0f}" for s in sizes])
    ax.set_xlabel("database size, MiB")
    ax.set_ylabel("downtime, s")
    ax.set_title(f"Upgrade downtime against database size ({results['machine']})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(target, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES_MIB)), help="database sizes in MiB")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    harness.require(*harness.ROOT_TOOLS, *harness.BOOT_TOOLS)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results: dict[str, Any] = {
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
        "v1": V1,
        "v2": V2,
        "baseline": BASELINE,
        "jobs": JOBS,
        "sizes": [],
    }
    with tempfile.TemporaryDirectory(prefix="mmpkg-bench-downtime-") as tmp, pg_server() as server:
        work = Path(tmp)
        results["postgres"] = server.psql("SHOW server_version")[0]
        debs = build_debs(work)
        with served_repository(work, debs["current"]) as served:
            for target in sizes:
                template = server.new_database("bench")
                size = populate(template, target)
                print(f"database of {size:.0f} MiB", file=sys.stderr)
                methods = dump_methods(template, work)
                outcomes = [asdict(run_contender(name, template, size, debs, served)) for name in CONTENDERS]
                results["sizes"].append({"size_mib": size, "outcomes": outcomes, "methods": methods})
                drop(template)
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / "downtime.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "downtime.md").write_text(markdown(results))
    plot(results, args.out / "downtime.png")
    print((args.out / "downtime.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
