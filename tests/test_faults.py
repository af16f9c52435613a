"""Fault sweep of the upgrade (docs/design.md, the lifecycle contract): every step of a .deb and
an .rpm upgrade, made to fail in each way that applies to it, then the documented recovery, then
what must hold.

The steps are one table, `STEPS`; each says which command it runs in each format (the probe),
which file system it writes, and what the package must say when it fails. The rows are derived
from it: a step with a probe gets "kill" (the maintainer script is killed with SIGKILL at that
command) and "fail" (the command exits 1), a step that writes gets "enospc" (that file system is
full), and a step may add its own ("knob": the sample server's failure switches). Adding a step
adds its rows.

Faults are injected inside the throw-away root only:
- a small tmpfs over the directory the step writes, filled before the upgrade or at the moment
  the probe's call returns (harness `Root.mount_small_fs`, `Root.fill`);
- the step's program replaced by a wrapper (harness `Root.wrap`) that acts at its Nth call whose
  arguments match, and otherwise runs the real one. The program itself is replaced rather than
  shadowed in /usr/local/bin: apt and rpm run scripts with PATHs of their own, without
  /usr/local (`test_scripts_run_with_the_path_the_sweep_relies_on`). "kill" sends SIGKILL to
  the maintainer script or scriptlet that made the call (the topmost process running it); a
  command the service user runs can only kill the shell it runs in.

Right after the fault a row checks what the package manager did (refused before unpacking,
failed after it, or went on) and what was printed: the package's one `mattermost: error:` line
naming the step or the full file system, or dpkg's and rpm's report of a killed script. A
refused upgrade must leave the old version usable (its next start finishes nothing). After the
recovery every row asserts the same: the new version is installed and configured, the
database is at its schema, no upgrade is pending, the configured version is on record, nothing
of the site is lost (`assert_nothing_lost`), the administrator's override is applied, every
snapshot is complete, no temporary file is left, and the unit is still enabled. Problems are
collected and reported together. The chroot tier never runs the service;
`test_running_service_upgrade_fault` boots some rows under systemd with the server running and
checks that it runs again, as the old version after a refusal and the new one after recovery.
"""

from __future__ import annotations

import contextlib
import enum
import json
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import pytest

from tests.support import harness
from tests.support.packages import Built, PackageFactory
from tests.support.scenario import BACKUPS, CONFIG, LOGS, Site, State, assert_nothing_lost, free_port
from tests.test_lifecycle import (
    ERROR_LINE,
    LAST_CONFIGURED,
    MIGRATE_LOG,
    NEW,
    OLD,
    OVERRIDDEN,
    OVERRIDE,
    UNIT,
    VERSION_FILE,
    WARNING_LINE,
    Deb,
    Manager,
    Result,
    Rpm,
    binary_version,
    has_pending,
    is_admins,
    manager,
    schema,
    snapshots,
    unit_state,
    unset_env,
    used_site,
)
from tests.test_systemd import Server

pytestmark = pytest.mark.install

Format = Literal["deb", "rpm"]
FORMATS: tuple[Format, ...] = ("deb", "rpm")
# Where in the upgrade a step runs: before unpacking (deb preinst, rpm %pre), unpacking, after
# it (deb postinst configure, rpm %post and %posttrans), or in the old package's rpm
# %preun/%postun, which rpm runs after the new %post.
Phase = Literal["pre", "unpack", "post", "old"]

ETC = "/etc/mattermost"
CONFIG_DIR = f"{ETC}/config"
OPT = "/opt"
PREFIX = "/opt/mattermost"
TEMP_GLOB = ".config.json.*"  # the package's temporary files next to config.json
FAULT_STATE = "/var/lib/mmpkg-tests-faults"
FIRED = f"{FAULT_STATE}/fired"
PATH_LOG = f"{FAULT_STATE}/path"
# The processes a maintainer script or scriptlet runs as: dpkg's new preinst (tmp.ci) and the
# installed scripts, rpm's scriptlets (written to /var/tmp), and the admin command.
SCRIPT_GLOBS = (
    "*/var/lib/dpkg/info/mattermost*",
    "*/var/lib/dpkg/tmp.ci/*",
    "*/var/tmp/rpm-tmp.*",
    "*/usr/sbin/mattermost-pkg*",
)
RPM_SCRIPT_PATH = "/sbin:/bin:/usr/sbin:/usr/bin:/usr/X11R6/bin"  # rpm's %_install_script_path
APT_DPKG_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # apt's DPkg::Path


class Outcome(enum.Enum):
    """What a failing step must do to the upgrade."""

    REFUSED = "refused: the old version stays as it was; retrying the upgrade finishes it"
    FAILS = "fails after unpacking; the format's way of finishing completes it"
    WARNS = "completes, with a warning naming the cause"
    SILENT = "completes; the failure is deliberately ignored"
    REPORTED = "completes with a warning, or fails with an error, naming the cause"


@dataclass(frozen=True)
class Probe:
    """A call a step makes: `command` at its `nth` call whose arguments contain `args` in order
    (and, for an interpreter, whose script holds every line of `lines`)."""

    command: str
    args: tuple[str, ...] = ()
    nth: int = 1
    lines: tuple[str, ...] = ()
    status: int = 1  # what it exits with when it fails

    def __str__(self) -> str:
        shown = " ".join([self.command, *self.args])
        return shown if self.nth == 1 else f"{shown} (call {self.nth})"


@dataclass(frozen=True)
class Knob:
    """A fault of the sample server's own (sample_release/fake_mattermost.py), set in the
    environment file, where both the server and the package's migration read it."""

    name: str
    variable: str
    outcome: Outcome
    names: str  # a regex the package's message must match


@dataclass(frozen=True)
class Step:
    name: str
    what: str
    phases: Mapping[Format, Phase]  # the formats it is a step of, and where it runs
    probes: Mapping[Format, Probe] = field(default_factory=dict)  # the call to kill or fail
    writes: str | None = None  # the file system it writes, made full for "enospc"
    fill_at: Mapping[Format, Probe] | None = None  # fill at this call; None: before the upgrade
    fill_before: bool = False  # fill before the fill_at call runs (else when it returns)
    names: str = ""  # a regex the package's message about a failure must match
    on_failure: Outcome | None = None  # for fail and enospc; default by phase
    after_call: bool = False  # kill or fail just after the probe's call did its work
    as_user: bool = False  # runs as the service user, who can only kill its own shell
    knobs: tuple[Knob, ...] = ()
    booted: bool = False  # only does something while systemd runs (the booted tier)
    misleading: str | None = None  # a regex the message about a failing command must not match

    def outcome(self, fmt: Format, fault: str) -> Outcome:
        for knob in self.knobs:
            if knob.name == fault:
                return knob.outcome
        if fault == "kill" or self.on_failure is None:
            return Outcome.REFUSED if self.phases[fmt] in ("pre", "unpack") else Outcome.FAILS
        return self.on_failure

    def faults(self, fmt: Format) -> list[str]:
        found = []
        if self.phases[fmt] == "unpack":
            # No script runs there; the package manager's own failure is a file another
            # package owns, which dpkg and rpm refuse to overwrite.
            found.append("fail")
        elif fmt in self.probes:
            found += ["kill", "fail"]
        elif not self.writes:
            raise ValueError(f"{self.name}: nothing to make fail in {fmt}")
        if self.writes is not None:
            found.append("enospc")
        return found + [k.name for k in self.knobs]

    def names_for(self, fault: str) -> str:
        for knob in self.knobs:
            if knob.name == fault:
                return knob.names
        return re.escape(self.writes) if fault == "enospc" and self.writes else self.names


def both(phase: Phase) -> dict[Format, Phase]:
    return {"deb": phase, "rpm": phase}


def each(probe: Probe) -> dict[Format, Probe]:
    return {"deb": probe, "rpm": probe}


OLD_RPM_HEADER = f"# ---- mmpkg lifecycle library: mattermost {OLD} (rpm) ----"
TMP = "/tmp"
MIGRATE = Probe("runuser", ("db", "migrate"))
SPACE_CHECKED = Probe("df", ("--output=target", BACKUPS))
SNAPSHOT_COPY = Probe("cp", ("-p", "--", ETC))
# config.json is read once before unpacking (the guard), and once after (the overrides).
CONFIG_READ = Probe("runuser", ("dd", f"if={CONFIG}", "iflag=nonblock status"), nth=2)
MERGE = Probe("jq", ("reduce",))
FINISHED = Probe("rm", ("-f", f"{BACKUPS}/pending"))

# The upgrade from OLD to NEW, step by step, in the order the scripts run them
# (debian/maintscript.j2, rpm/scriptlet.j2, templates/lifecycle/*.sh.j2).
STEPS: tuple[Step, ...] = (
    Step(
        "user (pre)", "deb preinst, rpm %pre: the service user and group exist (getent; an NSS outage says 2)",
        both("pre"), each(Probe("getent", ("group", "mattermost"), status=2)),
        names=r"\b(user|group)\b",
    ),
    Step(
        "guard: config", "config.json and overrides.d are JSON objects (jq)",
        both("pre"), each(Probe("jq", ('type == "object"', "live.json"), status=2)), names=re.escape(CONFIG),
        # The file is fine; only jq failed (2 is its own error): restoring a backup is no cure.
        misleading=r"not a JSON object|not valid JSON",
    ),
    Step(
        "guard: versions", "no downgrade, no forbidden jump (expr compares version keys; 2 is its error)",
        both("pre"), each(Probe("expr", status=2)), names=r"(?i)version",
    ),
    Step(
        "space check", "room for the snapshot in /var/backups/mattermost (df)",
        both("pre"), each(Probe("df", ("--output=avail", BACKUPS))), writes=BACKUPS, names=re.escape(BACKUPS),
    ),
    Step(
        "snapshot: state", "a new snapshot directory and its state file (mkdir, printf)",
        both("pre"), each(Probe("mkdir", (BACKUPS,))),
        writes=BACKUPS, fill_at=each(SPACE_CHECKED), names=re.escape(BACKUPS),
    ),
    Step(
        "database dump", "pg_dump -Fd of the database into the snapshot while the server still runs, as the service user (runuser)",
        both("pre"), each(Probe("runuser", ("pg_dump", "--format=directory"))), names=r"pg_dump",
    ),
    Step(
        "pending record", "the pending symlink to the snapshot (ln -sfn)",
        both("pre"), each(Probe("ln", ("-sfn", BACKUPS))), names=re.escape(BACKUPS),
    ),
    Step(
        "stop", "stop the running server (deb-systemd-invoke, systemctl)",
        both("pre"),
        {"deb": Probe("deb-systemd-invoke", ("stop", UNIT)), "rpm": Probe("systemctl", ("stop", UNIT))},
        names=re.escape(UNIT), booted=True,
    ),
    Step(
        "snapshot: copy", "root's files of /etc/mattermost into the snapshot (cp -p), the server's as it reads them",
        both("pre"), each(SNAPSHOT_COPY),
        writes=BACKUPS, fill_at=each(SNAPSHOT_COPY), fill_before=True, names=re.escape(BACKUPS),
    ),
    Step(
        "prune", "keep the newest snapshots (find | sort | tail | rm -rf)",
        both("pre"), each(Probe("find", (BACKUPS,))), names=re.escape(BACKUPS), on_failure=Outcome.REPORTED,
    ),
    Step("unpack", "the package manager writes the new release into /opt/mattermost", both("unpack"), writes=OPT),
    Step(
        "user", "deb postinst, rpm %post: the service user and group exist (getent)",
        both("post"),
        each(Probe("getent", ("group", "mattermost"), nth=2, status=2)),
        names=r"\b(user|group)\b",
    ),
    Step(
        "unit", "deb postinst: the unit keeps its enabled state (deb-systemd-helper)",
        {"deb": "post"}, {"deb": Probe("deb-systemd-helper", ("was-enabled",))}, on_failure=Outcome.SILENT,
    ),
    Step(
        "dirs", "deb postinst, rpm %post: directories, owners and modes (install -d)",
        both("post"), each(Probe("install", ("-m", "0755", ETC))), names=re.escape(ETC),
    ),
    Step(
        "rewritten files", "deb postinst: dpkg-statoverride records the new release's rewritten files",
        {"deb": "post"}, {"deb": Probe("dpkg-statoverride", ("--add", "664", PREFIX))}, names=re.escape(PREFIX),
    ),
    Step(
        "dirs (%posttrans)", "rpm %posttrans: the same again before configuring (install -d)",
        {"rpm": "post"}, {"rpm": Probe("install", ("-m", "0755", ETC), nth=2)}, names=re.escape(ETC),
    ),
    Step(
        "overrides: read", "config.json read as the service user into root's temporary directory (runuser dd)",
        both("post"), each(CONFIG_READ),
        writes=TMP, fill_at=each(Probe("mktemp", ("-d", "mattermost-pkg"), nth=2)), names=re.escape(CONFIG),
    ),
    Step(
        "overrides: merge", "jq deep-merges config.json, layer 2 and overrides.d (in the temporary directory)",
        both("post"), each(MERGE), writes=TMP, fill_at=each(CONFIG_READ), names=r"overrides",
    ),
    Step(
        "overrides: write", "the service user writes the merged file over config.json (runuser sh -c)",
        both("post"), each(Probe("runuser", ("mm-config", ETC))),
        writes=ETC, fill_at=each(MERGE), names=re.escape(CONFIG),
    ),
    Step(
        "overrides: temp file", "... through mktemp /etc/mattermost/.config.json.XXXXXX (as the service user)",
        both("post"), each(Probe("mktemp", (f"{CONFIG_DIR}/.config.json",))), names=re.escape(CONFIG), as_user=True,
    ),
    Step(
        "overrides: rename", "... and mv -f over config.json (as the service user)",
        both("post"), each(Probe("mv", ("-f", f"{CONFIG_DIR}/.config.json"))), names=re.escape(CONFIG), as_user=True,
    ),
    Step(
        "migrate", "runuser -u mattermost -- env -i ... mattermost db migrate",
        both("post"), each(MIGRATE), names=r"migration",
        knobs=(
            Knob("knob: migration fails", "MMPKG_SAMPLE_MIGRATION_FAIL", Outcome.FAILS, r"migration"),
            Knob("knob: database unreachable", "MMPKG_SAMPLE_DB_UNREACHABLE", Outcome.WARNS, r"database"),
        ),
    ),
    Step(
        "migrate: log", "the service user appends the output to package-upgrade.log (runuser dd)",
        both("post"), each(Probe("runuser", ("dd", f"of={MIGRATE_LOG}"))),
        writes=LOGS, fill_at=each(MIGRATE), names=re.escape(LOGS), on_failure=Outcome.REPORTED,
    ),
    Step(
        "finish", "remove the pending record (rm -f)",
        both("post"), each(FINISHED), names=re.escape(BACKUPS), after_call=True,
    ),
    Step(
        "record", "record the configured version (a new file, mv -f over the old)",
        both("post"), each(Probe("mv", ("-f", f"{LAST_CONFIGURED}.new"))),
        writes=BACKUPS, fill_at=each(FINISHED), names=re.escape(BACKUPS),
    ),
    Step(
        "start", "start the server again if it ran (deb-systemd-invoke, systemctl)",
        both("post"),
        {"deb": Probe("deb-systemd-invoke", ("start", UNIT)), "rpm": Probe("systemctl", ("start", UNIT))},
        names=re.escape(UNIT), on_failure=Outcome.WARNS, booted=True,
    ),
    Step(
        "old %preun", "rpm: the old package's %preun, which has nothing to do on upgrade",
        {"rpm": "old"},
        {"rpm": Probe("sh", lines=(OLD_RPM_HEADER, 'if [ "$1" -eq 0 ] && ! mm_being_replaced; then'))},
    ),
    Step(
        "old %postun", "rpm: the old package's %postun, which has nothing to do on upgrade",
        {"rpm": "old"}, {"rpm": Probe("sh", lines=(OLD_RPM_HEADER, 'if [ "$1" -eq 0 ]; then'))},
    ),
)  # fmt: skip

# Rows of the chroot tier that the booted tier runs again with the server running: what the
# administrator sees of a full backup disk, a step failing after the server was stopped, and a
# failed migration.
BOOTED_AGAIN = (("snapshot: copy", "enospc"), ("prune", "fail"), ("migrate", "knob: migration fails"))


@dataclass(frozen=True)
class Row:
    step: Step
    fault: str
    fmt: Format

    @property
    def outcome(self) -> Outcome:
        return self.step.outcome(self.fmt, self.fault)

    @property
    def phase(self) -> Phase:
        return self.step.phases[self.fmt]

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", f"{self.step.name} {self.fault}".lower()).strip("-")
        return f"{self.fmt}-{slug}"


def rows(*, booted: bool) -> list[Row]:
    found = [
        Row(step, fault, fmt)
        for fmt in FORMATS
        for step in STEPS
        if fmt in step.phases and step.booted == booted
        for fault in step.faults(fmt)
    ]
    if booted:
        by_name = {s.name: s for s in STEPS}
        found += [Row(by_name[name], fault, fmt) for fmt in FORMATS for name, fault in BOOTED_AGAIN]
    return found


ROWS = rows(booted=False)
BOOTED_ROWS = rows(booted=True)


def coverage() -> str:
    """The sweep's table: steps x faults per format, with each row's expected outcome."""
    lines = []
    for fmt in FORMATS:
        steps = [s for s in STEPS if fmt in s.phases]
        mine = [r for r in [*ROWS, *BOOTED_ROWS] if r.fmt == fmt]
        booted = [r for r in BOOTED_ROWS if r.fmt == fmt]
        lines.append(f"{fmt}: {len(steps)} steps, {len(mine)} rows ({len(booted)} booted under systemd)")
        for s in steps:
            shown = [f"{f} {s.writes}" if f == "enospc" else f for f in s.faults(fmt)]
            faults = ", ".join(
                f"{f} ({s.outcome(fmt, fault).name.lower()})"
                for f, fault in zip(shown, s.faults(fmt), strict=True)
            )
            probe = f" at `{s.probes[fmt]}`" if fmt in s.probes else ""
            tier = " [booted]" if s.booted else ""
            lines.append(f"  {s.phases[fmt]:<6} {s.name:<21} {faults}{probe}{tier}")
    return "\n".join(lines)


# ---- injecting faults ----------------------------------------------------------------------------


def _glob(args: tuple[str, ...]) -> str:
    return "*" + "*".join(shlex.quote(a) for a in args) + "*"


def wrapper(probe: Probe, real: str, action: str, *, when: str = "before", fill: str = "") -> str:
    """The program that stands in for `probe.command`: at the probe's call it kills the
    maintainer script that called it ("kill"), exits 1 ("fail"), fills the file system of
    `fill` ("fill") or records its PATH ("path", every call); otherwise it is the real one."""
    lines = "".join(
        f'    /usr/bin/grep -qxF -e {shlex.quote(line)} -- "$1" || return 1\n' for line in probe.lines
    )
    if probe.lines:
        lines = '    [ -f "${1:-}" ] || return 1\n' + lines
    globs = " | ".join(SCRIPT_GLOBS)
    act = {
        "kill": "victims=$(script_pids); kill -9 $victims; exit 137",
        "fail": f"printf '%s: simulated failure\\n' {probe.command} >&2; exit {probe.status}",
        "fill": f"/usr/bin/dd if=/dev/zero of={fill}/{harness.FILLER} bs=65536 2>/dev/null || :",
        "path": "printf '%s\\n' \"$PATH\" >>" + PATH_LOG,
    }[action]
    call = (
        f'    act "$@"\n    exec {real} "$@"\n'
        if when == "before"
        else f'    rc=0; {real} "$@" || rc=$?\n    act "$@"\n    exit "$rc"\n'
    )
    return f"""#!/usr/bin/dash
# Fault sweep: {action} at {probe} ({when} the call); otherwise the real {real}.
state={FAULT_STATE}
matches() {{
    case "$*" in {_glob(probe.args)}) ;; *) return 1 ;; esac
{lines}}}
# The script that made this call and its subshells on the way here (they carry its command
# line too), topmost first: killed in that order, the script cannot notice a subshell's death
# and exit on its own first. The service user can only kill the shell it runs in.
script_pids() {{
    if [ "$(/usr/bin/id -u)" != 0 ]; then
        printf '%s\\n' "$PPID"
        return 0
    fi
    sp_pid=$$ sp_found=
    while [ "$sp_pid" -gt 1 ]; do
        sp_cmd=$(/usr/bin/tr '\\0' ' ' </proc/"$sp_pid"/cmdline 2>/dev/null) || break
        case "$sp_cmd" in
            {globs}) sp_found="$sp_pid $sp_found" ;;
            *) [ -z "$sp_found" ] || break ;;
        esac
        read -r sp_stat </proc/"$sp_pid"/stat || break
        set -- ${{sp_stat##*) }}
        sp_pid=$2
    done
    printf '%s\\n' "$sp_found"
}}
act() {{
    printf '%s %s: %s\\n' {action} {probe.command} "$*" >>"$state/fired"
    {act}
}}
if matches "$@"; then
    n=0
    [ ! -r "$state/{probe.command}.calls" ] || read -r n <"$state/{probe.command}.calls"
    n=$((n + 1))
    printf '%s\\n' "$n" >"$state/{probe.command}.calls"
    if [ "$n" = {probe.nth} ] || [ {action} = path ]; then
{call}    fi
fi
exec {real} "$@"
"""


def install_wrapper(root: harness.Root, probe: Probe, action: str, **options: str) -> None:
    # Wrappers the service user runs keep their counts here too.
    state = root.path(FAULT_STATE)
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o1777)
    root.path(FIRED).touch()
    root.path(FIRED).chmod(0o666)
    root.wrap(probe.command, lambda real: wrapper(probe, real, action, **options))


def fired(root: harness.Root) -> str:
    return root.read_text(FIRED) if root.exists(FIRED) else ""


def package_files(pm: Manager, version: str) -> frozenset[str]:
    """The paths in `version`'s package of pm's format."""
    built = pm.build(version)
    if pm.fmt == "deb":
        listing = harness.run_host(["dpkg-deb", "--contents", built.deb]).stdout
        return frozenset(line.split()[5].removeprefix(".").rstrip("/") for line in listing.splitlines())
    return frozenset(harness.run_host(["rpm", "-qpl", built.rpm], env=harness.rpm_env()).stdout.split())


# ---- the package managers ----------------------------------------------------------------------

# apt reads its archive lists (1.2 s a call here) to resolve dependencies; the package is a local
# file and its dependencies are installed, so dpkg's status is all it needs.
APT_NO_LISTS = ("-o", "Dir::State::Lists=/var/lib/mmpkg-tests-apt-lists")


class LocalDeb(Deb):
    """apt-get and dpkg as in test_lifecycle, with apt reading no archive lists."""

    def _apt(self, *args: str, env: Mapping[str, str] | None = None) -> Result:
        self.root.path("/var/lib/mmpkg-tests-apt-lists/partial").mkdir(parents=True, exist_ok=True)
        return super()._apt(*APT_NO_LISTS, *args, env=env)


class BootedRpm(Rpm):
    """rpm inside the booted container, so that scriptlets reach its systemd (the host's
    rpm --root runs them chrooted, where no systemd runs)."""

    def install(self, built: Built, *, env: Mapping[str, str] | None = None) -> Result:
        argv = ["rpm", "--dbpath", harness.RPM_DBPATH, "--nodeps", "-U", self.root.copy_in(built.rpm)]
        return Result.of(self.root.run(*argv, env=env, check=False))


def sweep_manager(
    fmt: Format, root: harness.Root, packages: PackageFactory, *, booted: bool = False
) -> Manager:
    manager(fmt, root, packages)  # the tools both formats' builds need
    if fmt == "deb":
        return LocalDeb(root, packages)
    return BootedRpm(root, packages) if booted else Rpm(root, packages)


# ---- one row -----------------------------------------------------------------------------------


def shown(output: str) -> str:
    """A package manager's output without dpkg's progress lines and Debian rpm's reminder of
    alien, for failure messages."""
    noise = ("(Reading database", "rpm: RPM should not be used directly", "rpm: However assuming")
    return "\n".join(line for line in output.splitlines() if not line.startswith(noise))


def admins_only(state: State) -> State:
    """The site's own files, for a comparison after the server has run (it refreshes its
    prepackaged plugins and appends to its log on every start)."""
    return replace(state, files={p: h for p, h in state.files.items() if is_admins(p)})


@dataclass
class Case:
    """One row on one root: the fault put in, and taken out again."""

    pm: Manager
    row: Row
    site: Site
    filled: str | None = None

    @property
    def root(self) -> harness.Root:
        return self.pm.root

    def prepare(self) -> None:
        """What must exist before the root boots (its file systems)."""
        step = self.row.step
        if self.row.fault == "enospc":
            assert step.writes is not None
            self.root.mount_small_fs(step.writes, size=self._room_for(step.writes))
            self.filled = step.writes

    def inject(self) -> None:
        row, step, root = self.row, self.row.step, self.root
        if row.fault == "enospc":
            assert self.filled is not None
            if step.fill_at is None:
                root.fill(self.filled)
            else:
                when = "before" if step.fill_before else "after"
                install_wrapper(root, step.fill_at[row.fmt], "fill", when=when, fill=self.filled)
        elif row.phase == "unpack":
            self._squat()
        elif row.fault in ("kill", "fail"):
            install_wrapper(
                root, step.probes[row.fmt], row.fault, when="after" if step.after_call else "before"
            )
        else:
            (knob,) = (k for k in step.knobs if k.name == row.fault)
            # The sample server retries an unreachable database 18 times: at once, here.
            self.site.set_env(**{knob.variable: "1", "MMPKG_SAMPLE_DB_RETRY_SECONDS": "0"})

    def clear(self) -> None:
        """The administrator fixed the cause: room made, the program works again."""
        self.root.unwrap_all()
        if self.filled is not None:
            self.root.unfill(self.filled)
        for knob in self.row.step.knobs:
            if knob.name == self.row.fault:
                unset_env(self.root, knob.variable)
        if self.row.phase == "unpack" and self.row.fault == "fail":
            if self.row.fmt == "deb":
                self.root.run("dpkg", "--remove", "squatter")
            else:
                self.root.rpm("-e", "squatter")

    def _room_for(self, directory: str) -> str:
        # What is there (the old release, for /opt) and a little more, filled when it counts.
        used = sum(p.stat().st_size for p in self.root.path(directory).rglob("*") if p.is_file())
        return f"{used // 1024 + 1024}k"

    def _squat(self) -> None:
        """Another package already owns a file that only the new release has."""
        (path, *_) = sorted(package_files(self.pm, NEW) - package_files(self.pm, OLD))
        work = self.root.workdir / "squatter"
        if self.row.fmt == "deb":
            tree = work / "tree"
            (tree / "DEBIAN").mkdir(parents=True)
            (tree / "DEBIAN/control").write_text(
                "Package: squatter\nVersion: 1\nArchitecture: all\nMaintainer: x <x@example.com>\nDescription: x\n"
            )
            (tree / path.lstrip("/")).parent.mkdir(parents=True)
            (tree / path.lstrip("/")).write_text("squatted\n")
            deb = work / "squatter.deb"
            harness.run_host(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)])
            self.root.run("dpkg", "-i", self.root.copy_in(deb))
        else:
            spec = "\n".join(
                [
                    "Name: squatter", "Version: 1", "Release: 1", "Summary: x", "License: MIT",
                    "BuildArch: noarch", "%description", "x", "%install",
                    f"mkdir -p %{{buildroot}}{Path(path).parent}", f"echo squatted > %{{buildroot}}{path}",
                    "%files", path, "",
                ]
            )  # fmt: skip
            self.root.rpm("-i", harness.build_rpm(spec, work))


class Findings:
    """Everything a row finds wrong, reported together: one defect rarely comes alone."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.output = ""

    def expect(self, ok: object, problem: str) -> bool:
        if not ok:
            self.problems.append(problem)
        return bool(ok)

    @contextlib.contextmanager
    def check(self, what: str) -> Iterator[None]:
        try:
            yield
        except AssertionError as e:
            self.problems.append(f"{what}: {str(e).strip().splitlines()[0] if str(e).strip() else 'failed'}")

    def report(self) -> None:
        if self.problems:
            listed = "\n".join(f"- {p}" for p in self.problems)
            pytest.fail(
                f"{len(self.problems)} problem(s):\n{listed}\n--- what the upgrade printed ---\n{self.output}",
                pytrace=False,
            )


def expect_failed_as_expected(case: Case, result: Result, found: Findings) -> None:
    """Right after the faulty upgrade: the run did what the row's outcome says, and what the
    package printed names the cause."""
    row, step, pm = case.row, case.row.step, case.pm
    out = found.output = shown(result.output)
    if (row.fault == "enospc" and step.fill_at) or (row.fault in ("kill", "fail") and row.phase != "unpack"):
        probe = step.fill_at[row.fmt] if row.fault == "enospc" and step.fill_at else step.probes[row.fmt]
        if not found.expect(fired(case.root), f"the fault never happened: the step no longer runs `{probe}`"):
            return
    errors, warnings = ERROR_LINE.findall(out), WARNING_LINE.findall(out)
    names = step.names_for(row.fault)
    outcome = row.outcome
    if outcome in (Outcome.REFUSED, Outcome.FAILS):
        # rpm only fails the command for a failed %pre; a failed %post or %posttrans is a warning.
        if outcome is Outcome.REFUSED or pm.fmt == "deb":
            found.expect(result.returncode != 0, "the upgrade command succeeded")
        if (row.fault == "kill" and not step.as_user) or row.phase == "old":
            killed = (
                r"killed by signal \(Killed\)"
                if pm.fmt == "deb"
                else r"scriptlet failed, (signal 9|exit status 1)"
            )
            found.expect(
                re.search(killed, out), f"the package manager did not report the script's death ({killed})"
            )
        elif row.phase == "unpack":
            # A full /opt is seen first by rpm's own check, and by the preinst's for the deb
            # (dpkg has none), before anything is unpacked.
            cause = (
                r"No space left on device|needs .* on the /opt|not enough space for the new release in /opt"
                if row.fault == "enospc"
                else r"overwrite|conflicts"
            )
            found.expect(re.search(cause, out), f"nothing named the cause ({cause})")
        elif found.expect(
            len(errors) == 1, f"expected one 'mattermost: error:' line naming {names}, got {errors}"
        ):
            found.expect(re.search(names, errors[0]), f"{errors[0]!r} does not name {names}")
            if step.misleading and row.fault == "fail":
                found.expect(
                    not re.search(step.misleading, errors[0]), f"{errors[0]!r} blames the wrong cause"
                )
    if outcome is Outcome.REFUSED:
        found.expect(pm.version() == OLD, f"{OLD} is no longer installed (rpm/dpkg say {pm.version()})")
        found.expect(case.root.read_text(VERSION_FILE).strip() == OLD, f"{VERSION_FILE} is not {OLD}")
    elif outcome is Outcome.FAILS:
        if pm.fmt == "deb":
            status = case.root.dpkg_status("mattermost")
            found.expect(
                status in ("install ok half-configured", "install ok unpacked"), f"dpkg status {status!r}"
            )
        else:
            found.expect(pm.version() == NEW or row.phase == "old", f"rpm says {pm.version()} is installed")
    elif outcome is Outcome.REPORTED:
        said = [*errors, *warnings]
        found.expect(any(re.search(names, line) for line in said), f"no error or warning line naming {names}")
    else:
        found.expect(result.returncode == 0, f"the upgrade command failed ({result.returncode})")
        found.expect(not errors, f"error lines {errors}")
        if outcome is Outcome.WARNS:
            found.expect(
                any(re.search(names, w) for w in warnings), f"no 'mattermost: warning:' line naming {names}"
            )


def expect_old_still_usable(case: Case, found: Findings) -> None:
    """A refused upgrade left the old version as it was: its next start (the unit's
    ExecStartPre, `mattermost-pkg resume`) finds nothing to finish."""
    root = case.root
    resumed = Result.of(root.run("mattermost-pkg", "resume", check=False))
    found.expect(resumed.returncode == 0, f"mattermost-pkg resume failed: {resumed.output.strip()}")
    found.expect(
        NEW not in resumed.output,
        f"the {OLD} package's resume claims an upgrade to {NEW}: {resumed.output.strip()}",
    )
    found.expect(not has_pending(root), "an upgrade is still pending")
    found.expect(binary_version(root) == OLD, f"the server binary is not {OLD}")
    found.expect(root.read_text(LAST_CONFIGURED).strip() == OLD, f"{LAST_CONFIGURED} is not {OLD}")


def erase_old_duplicate(case: Case) -> None:
    """rpm keeps the old package's header when its %preun fails: remove that duplicate, as
    `dnf remove --duplicates` does; its scriptlets see $1 = 1 and leave everything alone."""
    installed = case.root.rpm(
        "-q", "--qf", "%{VERSION}-%{RELEASE}\\n", "mattermost", check=False
    ).stdout.split()
    if len(installed) < 2:
        return
    for version in installed:
        if not version.startswith(f"{NEW}-"):
            Result.of(case.root.rpm("-e", f"mattermost-{version}", check=False)).ok()


def finish_deb(case: Case) -> None:
    """dpkg's advice after a failed maintainer script (dpkg --configure -a), or apt's, which
    does the same for the packages it knows (apt-get -f install): one for each kind of fault."""
    if case.root.dpkg_status("mattermost") == "install ok installed":
        return
    if case.row.fault == "kill":
        opts = [arg for c in harness.CONF_OLD for arg in ("-o", f"Dpkg::Options::={c}")]
        Result.of(case.root.run("apt-get", "-f", "install", "-y", *APT_NO_LISTS, *opts, check=False)).ok()
    else:
        case.pm.finish().ok()


def refused(case: Case) -> bool:
    """Whether the upgrade stopped before the new version was unpacked (and rpm's erase of a
    duplicate header, if its %preun failed, is done)."""
    if case.pm.fmt == "rpm":
        erase_old_duplicate(case)
    return case.pm.version() == OLD


def recover(case: Case, found: Findings) -> None:
    """The documented way back, once the cause is fixed (chroot tier)."""
    pm = case.pm
    case.clear()
    if refused(case):
        expect_old_still_usable(case, found)
        pm.install(pm.build(NEW)).ok()
    elif case.row.fault == "knob: database unreachable":
        with case.site.serve():  # the server migrates when it next starts
            pass
    elif pm.fmt == "deb":
        finish_deb(case)
    else:
        pm.finish().ok()  # what the unit's ExecStartPre runs before the next start


def expect_recovered(case: Case, before: State, found: Findings, *, server_ran: bool) -> None:
    """After the recovery: the upgrade is complete and nothing of the site is lost."""
    pm, root = case.pm, case.root
    found.expect(pm.version() == NEW, f"{NEW} is not installed (the package manager says {pm.version()})")
    found.expect(root.read_text(VERSION_FILE).strip() == NEW, f"{VERSION_FILE} is not {NEW}")
    found.expect(binary_version(root) == NEW, f"the server binary is not {NEW}")
    found.expect(
        case.site.schema() == schema(NEW), f"the database schema is {case.site.schema()}, not {schema(NEW)}"
    )
    found.expect(not has_pending(root), "an upgrade is still pending")
    configured = root.read_text(LAST_CONFIGURED).strip() if root.exists(LAST_CONFIGURED) else None
    found.expect(configured == NEW, f"{LAST_CONFIGURED} says {configured}, not {NEW}")
    found.expect(unit_state(root) == "enabled", f"the unit is {unit_state(root)}")
    after = case.site.state()
    with found.check("the site lost something"):
        assert_nothing_lost(admins_only(before) if server_ran else before, after, changed_keys=OVERRIDDEN)
    site_name = after.config.get("TeamSettings", {}).get("SiteName")
    found.expect(
        site_name == OVERRIDE[1]["TeamSettings"]["SiteName"],
        f"the override is not applied (SiteName {site_name!r})",
    )
    # Nothing half-written is left: no temporary config, no partial snapshot.
    leftovers = sorted(p.name for p in root.path(CONFIG_DIR).glob(TEMP_GLOB))
    found.expect(not leftovers, f"temporary files left in {CONFIG_DIR}: {leftovers}")
    for snap in snapshots(root):
        saved = f"{BACKUPS}/{snap}/config/config.json"
        if not found.expect(
            root.exists(saved), f"{BACKUPS}/{snap} is an incomplete snapshot (no config.json)"
        ):
            continue
        try:
            keys = json.loads(root.read_text(saved)).keys()
        except ValueError:
            keys = None
        found.expect(keys == before.config.keys(), f"{saved} is half-written (not the whole configuration)")
    # The migration left its record in the log (unless the row is about the database being
    # away, or about that log itself, whose failure the package reports instead).
    if case.row.fault != "knob: database unreachable" and case.row.step.writes != LOGS:
        log = root.read_text(MIGRATE_LOG) if root.exists(MIGRATE_LOG) else ""
        done = rf"^== \S+: {re.escape(NEW)} db migrate, exit 0 in \d+\.\d{{3}} s$"
        found.expect(
            re.search(done, log, re.MULTILINE), f"{MIGRATE_LOG} has no record of the migration to {NEW}"
        )


@pytest.fixture(scope="module")
def site_layers(pristine: Path, packages: PackageFactory) -> Callable[[Format], Path]:
    """The used site at OLD (test_lifecycle.used_site: data, plugins, a System Console edit,
    an override waiting), set up once per format and frozen into a layer that every row's
    root starts from."""
    made: dict[Format, Path] = {}

    def layer(fmt: Format) -> Path:
        if fmt not in made:
            with harness.Root(pristine, name=f"site-{fmt}") as root:
                used_site(sweep_manager(fmt, root, packages))
                packages.build(NEW)  # both releases built before any row starts
                made[fmt] = root.freeze(harness.session_dir() / f"site-{fmt}")
        return made[fmt]

    return layer


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_upgrade_fault(
    row: Row, pristine: Path, site_layers: Callable[[Format], Path], packages: PackageFactory
) -> None:
    with harness.Root(pristine, layers=[site_layers(row.fmt)], name=row.id) as root:
        case = Case(sweep_manager(row.fmt, root, packages), row, Site(root))
        before = case.site.state()
        case.prepare()
        case.inject()

        result = case.pm.install(case.pm.build(NEW))

        found = Findings()
        expect_failed_as_expected(case, result, found)
        with found.check("the recovery failed"):
            recover(case, found)
            expect_recovered(case, before, found, server_ran=row.fault == "knob: database unreachable")
        found.report()


# ---- the booted tier: the same rows with the server running under systemd ------------------------


@pytest.mark.systemd
@pytest.mark.parametrize("row", BOOTED_ROWS, ids=[r.id for r in BOOTED_ROWS])
def test_running_service_upgrade_fault(
    row: Row,
    pristine: Path,
    site_layers: Callable[[Format], Path],
    packages: PackageFactory,
    booted: harness.BootFactory,
) -> None:
    harness.require(*harness.BOOT_TOOLS)
    with harness.Root(pristine, layers=[site_layers(row.fmt)], name=row.id) as root:
        pm = sweep_manager(row.fmt, root, packages, booted=True)
        case = Case(pm, row, Site(root))
        port = free_port()
        case.site.set_env(MM_SERVICESETTINGS_LISTENADDRESS=f"127.0.0.1:{port}")
        case.prepare()
        server = Server(fmt=row.fmt, root=root, box=booted(root), port=port)
        server.systemctl("start", UNIT)
        server.assert_running(OLD)
        before = case.site.state()
        case.inject()

        result = pm.install(pm.build(NEW))

        found = Findings()
        expect_failed_as_expected(case, result, found)
        case.clear()
        with found.check("the recovery failed"):
            if refused(case):
                # Refused before anything changed: the old server is still there, and answering.
                with found.check(f"the {OLD} server is not running after the refused upgrade"):
                    server.assert_running(OLD)
                pm.install(pm.build(NEW)).ok()
            elif row.fmt == "deb":
                finish_deb(case)
            else:
                server.systemctl("start", UNIT)  # rpm's retry: ExecStartPre finishes the upgrade
            if row.outcome is Outcome.WARNS:
                server.systemctl("start", UNIT)  # what the warning asks for
            # The administrator had it running: it runs again, as the new version.
            with found.check(f"the server is not running {NEW} after the recovery"):
                server.assert_running(NEW)
            expect_recovered(case, before, found, server_ran=True)
        found.report()


# ---- the sweep itself ---------------------------------------------------------------------------


def test_sweep_covers_every_step_in_both_formats(terminal_summary: Callable[[str], None]) -> None:
    for step in STEPS:
        assert step.phases, step.name
        tier = BOOTED_ROWS if step.booted else ROWS
        for fmt in step.phases:
            assert step.faults(fmt), f"{step.name} has no fault in {fmt}"
            assert [r.fault for r in tier if r.step is step and r.fmt == fmt] == step.faults(fmt)
    terminal_summary("fault sweep (tests/test_faults.py), steps x faults (expected outcome):\n" + coverage())


def test_scripts_run_with_the_path_the_sweep_relies_on(pristine: Path, packages: PackageFactory) -> None:
    """No package tool runs maintainer scripts with /usr/local/bin on PATH as such: apt gives
    dpkg its DPkg::Path, rpm gives scriptlets its %_install_script_path, and only a bare dpkg
    passes its caller's PATH on. So a program put in /usr/local/bin to shadow one would not be
    called, and the sweep replaces the program itself."""
    seen: dict[str, list[str]] = {}
    for how in ("apt-get", "dpkg", "rpm"):
        with harness.Root(pristine, name=f"path-{how}") as root:
            pm = sweep_manager("rpm" if how == "rpm" else "deb", root, packages)
            pm.install(pm.build(OLD)).ok()
            install_wrapper(root, SNAPSHOT_COPY, "path")
            if how == "dpkg":
                Result.of(root.dpkg("-i", pm.build(NEW).deb, check=False)).ok()
            else:
                pm.install(pm.build(NEW)).ok()
            # One PATH, however many calls the probe matched (a file of root's each).
            seen[how] = sorted(set(root.read_text(PATH_LOG).split()))
    assert seen == {
        "apt-get": [APT_DPKG_PATH],
        "dpkg": [harness.SAFE_PATH],  # the harness's own PATH, /usr/local first
        "rpm": [RPM_SCRIPT_PATH],
    }
