"""The lifecycle library's parts for upgrades nobody watches, on their own under dash and bash
--posix: who runs the upgrade (from the real process tree), the reports' HMAC against Python's
hmac, the password kept out of a report, and the report a healthy upgrade writes."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.report_receiver import receiver
from tests.test_shell import ShellRunner, library, sh

__all__ = ["sh"]

# RFC 4231's test case 2, then keys around the block size (64 bytes) and far beyond it, with
# every printable character a secret may hold.
KEYS = [
    "Jefe",
    "k" * 63,
    "k" * 64,
    "k" * 65,
    "".join(chr(c) for c in range(32, 127)) * 3,
    "ß€ — not ASCII",
]
MESSAGES = [b"what do ya want for nothing?", b"", b'{"result": "upgraded"}\n', bytes(range(256)) * 40]


def test_rfc_4231_case_2(sh: ShellRunner) -> None:
    (sh.tmp / "key").write_text("Jefe\n")
    (sh.tmp / "msg").write_bytes(b"what do ya want for nothing?")
    out = sh.ok(f'mm_hmac_sha256 "{sh.tmp}/key" <"{sh.tmp}/msg"').strip()
    assert out == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"{len(k.encode())}-bytes")
def test_hmac_is_python_s(sh: ShellRunner, key: str) -> None:
    (sh.tmp / "key").write_text(key + "\n")
    for i, message in enumerate(MESSAGES):
        (sh.tmp / f"msg{i}").write_bytes(message)
    body = "\n".join(f'mm_hmac_sha256 "{sh.tmp}/key" <"{sh.tmp}/msg{i}"' for i in range(len(MESSAGES)))
    said = sh.ok(body).split()
    # The secret is the file's first line, as an administrator writes it with echo.
    assert said == [hmac.new(key.encode(), m, hashlib.sha256).hexdigest() for m in MESSAGES]


def test_the_secret_never_reaches_a_command_line(sh: ShellRunner) -> None:
    """Every process the signing starts is recorded with its arguments: none holds the key."""
    secret = "s3cret-only-root-knows"
    (sh.tmp / "key").write_text(secret + "\n")
    (sh.tmp / "msg").write_bytes(b"{}")
    bindir = sh.tmp / "bin"
    bindir.mkdir()
    log = sh.tmp / "argv.log"
    for tool in ("head", "tr", "od", "wc", "sha256sum", "cut", "cat", "printf"):
        real = subprocess.run(
            ["sh", "-c", f"command -v {tool}"], capture_output=True, text=True
        ).stdout.strip()
        wrapper = bindir / tool
        wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >>{log}\nexec {real} "$@"\n')
        wrapper.chmod(0o755)
    path = f"{bindir}:{os.environ['PATH']}"
    sh.ok(f'PATH={path}\nmm_hmac_sha256 "{sh.tmp}/key" <"{sh.tmp}/msg"')
    assert log.read_text()  # the wrappers ran
    assert secret not in log.read_text()


def test_a_report_never_holds_the_database_password(sh: ShellRunner) -> None:
    password = "p@ss:w/rd*"
    quoted = "p%40ss%3Aw%2Frd%2A"
    (sh.tmp / "etc/mattermost.env").write_text(
        f"MM_SQLSETTINGS_DATASOURCE=postgres://mmuser:{quoted}@db.example:5432/mattermost\n"
    )
    (sh.tmp / "out").write_text(
        f"failed to ping DB: pq: password {password} refused\n"
        f"dsn postgres://mmuser:{quoted}@db.example:5432/mattermost\n"
        "another://someone:other-secret@host/x and nothing else\n"
    )
    out = sh.ok(f'mm_redact <"{sh.tmp}/out"')
    assert password not in out and quoted not in out and "other-secret" not in out
    assert "password *** refused" in out and "postgres://***:***@db.example:5432/mattermost" in out


def _snapshot(sh: ShellRunner, **state: str) -> Path:
    snap = sh.tmp / "backups/20261208T000000Z_10.5.2_to_10.11.1"
    (snap / "etc-mattermost").mkdir(parents=True)
    lines = {"from": "10.5.2", "to": "10.11.1", "complete": "1"} | state
    (snap / "state").write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    return snap


def test_a_healthy_upgrade_reports_success_and_its_downtime(sh: ShellRunner) -> None:
    snap = _snapshot(sh, stopped_at="1000.25")
    out = sh.ok(f'MM_ANSWERED_AT=1004.75\nmm_report upgraded "{snap}" "" ""\ncat "$MM_REPORT"')
    report = json.loads(out)
    assert report["result"] == "upgraded" and (report["from"], report["to"]) == ("10.5.2", "10.11.1")
    assert report["downtime_seconds"] == 4.5
    assert report["step"] is None and report["held"] is None and report["log"] == []


def test_a_report_goes_unsent_without_a_secret_only_root_reads(sh: ShellRunner) -> None:
    snap = _snapshot(sh)
    # Port 9 (discard) on loopback: nothing is listening, and nothing is reached either way.
    (sh.tmp / "etc/report.secret").write_text("shared\n")
    (sh.tmp / "etc/report.secret").chmod(0o644)
    with receiver() as got:
        proc = sh(f'mm_load_settings strict\nmm_report upgraded "{snap}" "" ""', MMPKG_REPORT_URL=got.url)
        assert proc.returncode == 0, proc.stderr
        assert "is missing or not root's alone (mode 0600)" in proc.stderr
        assert json.loads((sh.tmp / "backups/last-report.json").read_text())["result"] == "upgraded"
        assert got.received == []
        # Root's alone: sent, and signed with it.
        (sh.tmp / "etc/report.secret").chmod(0o600)
        proc = sh(f'mm_load_settings strict\nmm_report upgraded "{snap}" "" ""', MMPKG_REPORT_URL=got.url)
        assert proc.returncode == 0 and f"reported the outcome to {got.url}" in proc.stdout, proc.stderr
        (report,) = got.reports("shared")
        assert report == json.loads((sh.tmp / "backups/last-report.json").read_text())
        assert not got.received[0].valid("another")


def test_a_report_that_cannot_be_sent_is_a_warning(sh: ShellRunner) -> None:
    snap = _snapshot(sh)
    (sh.tmp / "etc/report.secret").write_text("shared\n")
    (sh.tmp / "etc/report.secret").chmod(0o600)
    # Port 9 (discard) on loopback: nothing listens there.
    proc = sh(
        f'mm_load_settings strict\nmm_report upgraded "{snap}" "" ""\necho done',
        MMPKG_REPORT_URL="http://127.0.0.1:9/r",
    )
    assert proc.returncode == 0 and "done" in proc.stdout
    assert "cannot send the report to http://127.0.0.1:9/r" in proc.stderr
    assert "'mattermost-pkg report --send' sends it again" in proc.stderr


def test_unattended_upgrades_and_dnf_automatic_are_told_from_their_process_names(
    sh: ShellRunner, tmp_path: Path
) -> None:
    """The real process tree: a script named as each upgrader (its comm is its name) runs a
    package manager's name, which runs the library."""
    inner = tmp_path / "inner.sh"
    inner.write_text(
        "set -e\n" + library(sh.fmt) + "\nmm_load_settings() { :; }\nMM_UNATTENDED=0\nmm_who_upgrades\n"
        'printf "%s|%s\\n" "$MM_UNATTENDED_BY" "$MM_PM_PIDS"\n'
    )
    found = {}
    for upgrader in ("unattended-upgrade", "dnf-automatic", "apt-get"):
        bindir = tmp_path / upgrader
        bindir.mkdir()
        pm = bindir / ("dpkg" if upgrader != "dnf-automatic" else "rpm")
        pm.write_text(f"#!/bin/sh\n{sh.shell} {inner}\ntrue\n")
        top = bindir / upgrader
        top.write_text(f"#!/bin/sh\n{pm}\ntrue\n")
        for script in (pm, top):
            script.chmod(script.stat().st_mode | stat.S_IXUSR)
        found[upgrader] = subprocess.run([top], capture_output=True, text=True, check=True).stdout.strip()
    by, pids = found["unattended-upgrade"].split("|")
    assert by == "unattended-upgrades" and len(pids.split()) == 2  # dpkg and the upgrader
    assert found["dnf-automatic"].split("|")[0] == "dnf-automatic"
    by, pids = found["apt-get"].split("|")
    assert by == "" and len(pids.split()) == 2  # watched: apt-get and dpkg, to wait for
    for entry in pids.split():
        pid, start = entry.split(":")
        assert pid.isdigit() and start.isdigit()


def test_a_watched_upgrade_that_fails_is_left_to_the_administrator(sh: ShellRunner) -> None:
    """Nothing is asked (prompts are debconf's in Debian), nothing rolls back: the report says
    how to."""
    snap = _snapshot(sh)
    (sh.tmp / "db.out").write_text("failed\n")
    out = sh.ok(
        f'mm_load_settings strict\nMM_UNATTENDED_BY=\nmm_upgrade_failed "{snap}" migration "it failed" "{sh.tmp}/db.out"\n'
        'echo "healing=$MM_HEALING"'
    )
    assert "healing=0" in out and "Roll back" not in out
    report = json.loads((sh.tmp / "backups/last-report.json").read_text())
    assert (
        "someone may be watching it; 'mattermost-pkg rollback' rolls it back, asking first"
        in report["reason"]
    )
