"""Upstream's upgrade path as one table: what it refuses, the plans it makes, the guard rendered
from it (run under dash), and the repository retention that keeps the plans possible."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmpkg.errors import RepoError, UpgradePathError
from mmpkg.mattermost.upgrade_path import ESR_LINES, TABLE, plan, refusal, step_advice
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.repo.packages import Entry
from mmpkg.repo.retention import to_prune, upstream_version
from tests.test_shell import SHELLS, run_sh

V = MattermostVersion.parse


# ---- the table says what upstream says (important-upgrade-notes, release policy) ----


@pytest.mark.parametrize(
    ("old", "new", "because"),
    [
        ("5.36.0", "6.0.0", "upgrade to 5.37 (ESR) first"),
        ("5.31.0", "7.1.0", "upgrade to 5.37 (ESR) first"),
        # 5.x to 7.x needs the last 5.37 release, not any.
        ("5.37.0", "7.1.8", "upgrade to 5.37.10 (ESR) first"),
        ("5.37.9", "7.0.0", "upgrade to 5.37.10 (ESR) first"),
        ("5.37.10", "7.2.0", "upgrade to 7.1 (ESR) first"),
        ("7.0.0", "10.5.2", "upgrade to 7.1 (ESR) first"),
        ("7.1.0-rc1", "7.2.0", "upgrade to 7.1 (ESR) first"),
        ("10.11.17", "11.7.2", "choose 11.7.3 or later"),
        ("10.11.20", "11.0.0", "choose 11.7.3 or later"),
        # Past two ESRs or more: not supported.
        ("7.1.0", "10.11.17", "upgrade to 7.8 (ESR) first"),
        ("8.1.0", "10.5.0", "upgrade to 9.5 (ESR) first"),
        ("9.11.0", "11.0.0", "upgrade to 10.5 (ESR) first"),
        ("10.6.0", "11.8.0", "upgrade to 10.11 (ESR) first"),
        ("10.5.0-rc1", "10.12.0", "upgrade to 10.5 (ESR) first"),
        ("5.36.0", "5.37.10", None),
        ("5.37.10", "7.1.8", None),  # across 6.3: "upgrade to 5.37.10 first" for 7.x
        ("8.1.0", "9.11.0", None),  # across one ESR: supported, not tested
        ("10.6.0", "11.7.9", None),
        ("10.5.0", "10.12.0", None),
        ("10.5.2", "10.11.1", None),
        ("10.11.16", "11.0.0", None),
        ("10.11.17", "11.7.3", None),
        ("10.11.17", "10.11.20", None),
        ("10.12.0", "11.0.0", None),
        ("11.7.9", "12.0.0", None),  # past the newest ESR upstream has named
    ],
)
def test_refusal(old: str, new: str, because: str | None) -> None:
    why = refusal(V(old), V(new))
    if because is None:
        assert why is None
    else:
        assert why is not None and why.startswith(f"refusing to upgrade from {old} to {new}: ")
        assert because in why


def test_every_row_names_its_source() -> None:
    sources = [r.source for r in TABLE.rules] + [TABLE.esr.source, TABLE.mysql_end_source]
    sources += [source for _, source in ESR_LINES]
    assert TABLE.rules and all(s.startswith("https://docs.mattermost.com/") for s in sources)


def test_the_esr_rule_reads_upstreams_esr_lines() -> None:
    """One list of ESR lines: the channel rules, the ESR rule and the ESR stops all read it."""
    lines = [(line.major, line.minor) for line in TABLE.esr.lines]
    assert lines == sorted(lines) and len(lines) == len(ESR_LINES)
    assert [f"{x}.{y}" for x, y in lines] == [line for line, _ in ESR_LINES]
    assert {(stop.stop.major, stop.stop.minor) for stop in TABLE.required_stops if stop.kind == "ESR"} <= set(
        lines
    )
    assert TABLE.esr.may_pass == 1  # "across multiple ESR versions (major to major+2)" and no further


AVAILABLE = [
    V(v)
    for v in (
        "5.35.0", "5.37.9", "5.37.10", "6.0.0", "6.3.10", "7.0.0", "7.1.8", "7.2.0", "7.8.15", "8.1.13",
        "9.5.14", "9.11.18", "10.5.2", "10.11.1",
    )
]  # fmt: skip


@pytest.mark.parametrize(
    ("installed", "target", "steps"),
    [
        # Through every ESR on the way: the tested path.
        (
            "5.35.0",
            "10.5.2",
            ["5.37.10", "6.3.10", "7.1.8", "7.8.15", "8.1.13", "9.5.14", "9.11.18", "10.5.2"],
        ),
        ("5.37.9", "7.1.8", ["6.3.10", "7.1.8"]),
        ("6.0.0", "7.2.0", ["6.3.10", "7.1.8", "7.2.0"]),
        ("7.1.8", "9.11.18", ["7.8.15", "8.1.13", "9.5.14", "9.11.18"]),
        ("5.35.0", "6.0.0", ["5.37.10", "6.0.0"]),
        ("5.37.9", "6.0.0", ["6.0.0"]),
        # The target need not be among the available versions.
        ("10.5.2", "11.0.0", ["10.11.1", "11.0.0"]),
        ("10.11.1", "11.7.9", ["11.7.9"]),
        ("10.5.2", "10.5.2", []),
    ],
)
def test_plan_takes_the_newest_tested_stop(installed: str, target: str, steps: list[str]) -> None:
    path = plan(V(installed), V(target), AVAILABLE)
    assert [str(v) for v in path] == steps
    for old, new in zip([V(installed), *path], path, strict=False):
        assert refusal(old, new) is None
        assert step_advice(old, new) is None and not TABLE.esr.passed(old, new)


def test_plan_stops_at_an_esr_the_guard_would_let_it_pass() -> None:
    """Across one ESR the guard allows (supported, not tested); a plan stops there all the same."""
    assert refusal(V("10.5.2"), V("11.0.0")) is None
    assert step_advice(V("10.5.2"), V("11.0.0")) == "upgrade to 10.11 (ESR) first"
    with pytest.raises(UpgradePathError, match=r"it needs a 10\.11 release \(ESR\)"):
        plan(V("10.5.2"), V("11.0.0"), [V("10.6.0"), V("11.0.0")])


def test_plan_avoids_a_forbidden_jump() -> None:
    available = [V(v) for v in ("11.0.0", "11.7.2", "11.7.3", "11.8.0")]
    assert plan(V("10.11.17"), V("11.8.0"), available) == [V("11.7.3"), V("11.8.0")]
    with pytest.raises(UpgradePathError, match=r"11\.7\.3 or later instead of 11\.7\.2"):
        plan(V("10.11.17"), V("11.7.2"), available)


@pytest.mark.parametrize(
    ("installed", "target", "without", "missing"),
    [
        ("5.35.0", "7.2.0", (5, 37), r"a 5\.37 release \(at least 5\.37\.0, below 6\.0\.0\)"),
        ("6.0.0", "10.5.2", (7, 1), r"a 7\.1 release \(at least 7\.1\.0, below 7\.2\.0\)"),
        ("7.1.8", "9.11.18", (8, 1), r"from 7\.8\.15 .* it needs a 8\.1 release \(ESR\)"),
    ],
)
def test_plan_names_the_missing_stop(
    installed: str, target: str, without: tuple[int, int], missing: str
) -> None:
    available = [v for v in AVAILABLE if (v.major, v.minor) != without]
    with pytest.raises(UpgradePathError, match=missing):
        plan(V(installed), V(target), available)


def test_plan_refuses_a_downgrade() -> None:
    with pytest.raises(UpgradePathError, match="older than"):
        plan(V("7.3.0"), V("7.2.0"), AVAILABLE)


# ---- the rendered guard and the table agree ----


def _around(v: MattermostVersion) -> list[MattermostVersion]:
    """A bound, its first release candidate (which sorts below it) and the release before it."""
    before = (
        MattermostVersion(v.major, v.minor, v.patch - 1)
        if v.patch
        else MattermostVersion(v.major, v.minor - 1, 99)
        if v.minor
        else MattermostVersion(v.major - 1, 99, 0)
    )
    return [v, MattermostVersion(v.major, v.minor, v.patch, 1), before]


def _grid() -> list[MattermostVersion]:
    bounds = {r.stop for r in TABLE.required_stops} | {r.before for r in TABLE.required_stops}
    for j in TABLE.forbidden_jumps:
        bounds |= {j.old_from, j.old_below, j.new_from, j.new_below}
    # An ESR line besides: with the rows' bounds (10.12.0, 11.7.3), jumps past none, one and two
    # ESRs (10.4.99 to 11.0.0 passes 10.5 and 10.11). All of them would make the shell run long.
    bounds |= {V("10.5.0")}
    return sorted({a for b in bounds for a in _around(b)})


def test_the_guard_refuses_exactly_what_the_table_refuses(tmp_path: Path) -> None:
    grid = _grid()
    pairs = [(old, new) for old in grid for new in grid if old < new]
    for sub in ("etc", "share", "backups", "logs", "state"):
        (tmp_path / sub).mkdir()
    # Each pair in a subshell that keeps errexit (the guard's own behaviour), outside `if`. With
    # no database here, the database version check warns where a release's minimum rises
    # (tests/test_start_refusals.py); a warning is no refusal.
    body = "mm_load_settings strict\nset +e\n" + "".join(
        f"(set -e; MM_VERSION={new}; mm_check_upgrade_path {old}) 2>err; "
        f"echo \"{old} {new} $? $(grep -v ': warning: ' err)\"\n"
        for old, new in pairs
    )
    proc = run_sh("deb", "dash", body, tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(pairs)
    refused = by_esr = 0
    for (old, new), line in zip(pairs, lines, strict=True):
        got_old, got_new, rc, message = [*line.split(" ", 3), ""][:4]
        assert (got_old, got_new) == (str(old), str(new))
        why = refusal(old, new)
        if why is None:
            assert (rc, message) == ("0", ""), line
        else:
            refused += 1
            by_esr += not any(row.refuses(old, new) for row in TABLE.rules)
            assert (rc, message) == ("1", f"mattermost: error: {why}"), line
    # The grid reaches both sides of every row, and the ESR rule on its own.
    assert 0 < refused < len(pairs) and by_esr > 0


OFFERED = (
    "5.35.0", "5.37.10", "6.0.0", "6.3.10", "7.0.0", "7.1.8", "7.2.0", "10.5.2", "10.11.18", "11.0.0",
    "11.7.3", "11.8.0",
)  # fmt: skip


@pytest.mark.parametrize(
    "offered",
    [
        OFFERED,
        tuple(v for v in OFFERED if not v.startswith("7.1.")),
        tuple(v for v in OFFERED if v != "11.7.3"),
    ],
    ids=["all", "no-7.1", "no-11.7.3"],
)
@pytest.mark.parametrize("shell", SHELLS)
def test_the_admin_commands_plan_is_the_tables_plan(
    tmp_path: Path, offered: tuple[str, ...], shell: str
) -> None:
    """`mattermost-pkg upgrade` plans in shell on the server: it must choose the stops plan() does,
    and fail where plan() finds no path, naming what is missing."""
    for sub in ("etc", "share", "backups", "logs", "state"):
        (tmp_path / sub).mkdir()
    lines = "\n".join(f"{v} {v}-1" for v in offered)
    cases = [(a, b) for a in ("5.35.0", "7.0.0", "10.5.2") for b in offered if V(a) < V(b)]
    body = f"offered='{lines}'\nset +e\n" + "".join(
        f'plan=$( (set -e; mm_plan {a} {b} "$offered") 2>err); echo "{a} {b} $? $(echo $plan) | $(cat err)"\n'
        for a, b in cases
    )
    proc = run_sh("deb", shell, body, tmp_path)
    assert proc.returncode == 0, proc.stderr
    failed = 0
    for (a, b), line in zip(cases, proc.stdout.splitlines(), strict=True):
        head, err = line.split(" | ", 1)
        got_a, got_b, rc, *stops = head.split()
        assert (got_a, got_b) == (a, b)
        try:
            expected = [str(v) for v in plan(V(a), V(b), map(V, offered))]
        except UpgradePathError as exc:
            failed += 1
            assert rc == "1", line  # what it printed before failing is not used
            # Both stop at the same version, and say what the table wants from there.
            stuck = str(exc).removeprefix("no upgrade path from ").split()[0]
            why = step_advice(V(stuck), V(b))
            assert err == (
                f"mattermost: error: no upgrade path from {stuck} to {b} among the versions the "
                f"repositories offer: {why or 'none of them is newer'}. "
                "Publish the missing release in the repository, then try again"
            ), line
            continue
        assert (rc, stops, err) == ("0", expected, ""), line
    # Both outcomes are reached (with every release offered, only a forbidden target fails).
    assert 0 < failed < len(cases)


# ---- retention: the newest `keep` versions, and the stops anything older needs ----


def _entries(*versions: str, fmt: str = "deb", arch: str = "amd64", name: str = "mattermost") -> list[Entry]:
    def path(v: str) -> Path:
        return Path("pool/main/m") / name / f"{name}_{v}_{arch}.{fmt}"

    return [Entry(name, v, arch, fmt, path(v)) for v in versions]


CHANNEL = ("5.35.0-1", "5.37.10-1", "6.0.0-1", "6.3.10-1", "7.0.0-1", "7.1.8-1", "7.2.0-1", "7.3.0-1")


def _versions(entries: list[Entry]) -> list[str]:
    return [e.version for e in sorted(entries, key=lambda e: (upstream_version(e), e.version))]


def test_retention_keeps_the_stops_older_installations_need() -> None:
    entries = _entries(*CHANNEL)
    pruned = to_prune(entries, 2)
    # 5.37.10, 6.3.10 and 7.1.8 stay: the ESRs of the tested path from the versions that go.
    assert _versions(pruned) == ["5.35.0-1", "6.0.0-1", "7.0.0-1"]
    kept = [upstream_version(e) for e in entries if e not in pruned]
    newest = max(kept)
    # Every version the channel carried still reaches the newest through what is left.
    for old in {upstream_version(e) for e in entries} - {newest}:
        assert plan(old, newest, kept)[-1] == newest


def test_retention_without_old_versions_is_the_newest_keep() -> None:
    assert _versions(to_prune(_entries("10.5.2-1", "10.6.0-1", "10.7.0-1", "10.11.1-1"), 2)) == [
        "10.5.2-1",
        "10.6.0-1",
    ]
    assert to_prune(_entries("7.3.0-1", "10.5.2-1"), 5) == []


def test_retention_counts_revisions_as_one_version() -> None:
    entries = _entries(
        "10.5.2-1", "10.5.2-2", "10.11.1-1", "10.11.1-3", "10.11.1-2", "11.0.0~rc1-1", "11.0.0-1"
    )
    # 11.0.0, its release candidate (a version of its own, below it) and 10.11.1's newest revision.
    assert _versions(to_prune(entries, 3)) == ["10.5.2-1", "10.5.2-2", "10.11.1-1", "10.11.1-2"]
    # With one kept, 10.11.1 stays all the same: 10.5.2's way to 11.0.0 goes through that ESR.
    kept = {"11.0.0-1", "10.11.1-3"}
    assert _versions(to_prune(entries, 1)) == _versions([e for e in entries if e.version not in kept])


def test_retention_is_per_package_format_and_architecture() -> None:
    debs = _entries("10.5.2-1", "10.11.1-1")
    rpms = _entries("10.5.2-1", fmt="rpm", arch="x86_64")
    team = _entries("10.5.2-1", "10.11.1-1", name="mattermost-team")
    assert to_prune([*debs, *rpms, *team], 1) == [debs[0], team[0]]


def test_retention_keeps_what_it_cannot_read_and_refuses_keep_zero(caplog: pytest.LogCaptureFixture) -> None:
    odd = _entries("1:10.5.2-1", "10.11.1-1", "11.0.0-1")
    assert to_prune(odd, 1) == [odd[1]]
    assert "is not a Mattermost package version" in caplog.text
    with pytest.raises(RepoError, match="keep must be at least 1"):
        to_prune(odd, 0)


def test_retention_warns_when_an_old_version_has_no_path(caplog: pytest.LogCaptureFixture) -> None:
    stranded = _entries("5.35.0-1", "7.3.0-1")
    assert to_prune(stranded, 1) == [stranded[0]]
    assert "installations of 5.35.0 cannot reach the newest" in caplog.text
