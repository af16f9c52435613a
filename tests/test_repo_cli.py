"""`mmpkg repo ...` as people run it: what it prints, its JSON, its exit codes, and what the real
tools (dpkg-deb, gpg, apt) make of its output."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mmpkg.errors import CLOSED_OUTPUT
from mmpkg.repo import keyring
from mmpkg.repo.clients import RPM_KEY, ClientFormat, client_config
from tests.support import harness
from tests.support.cli_runner import Mmpkg, runner
from tests.support.packages import PackageFactory
from tests.test_cli import closed_stdout
from tests.test_repo import tree_hash

V1, V2 = "10.5.2", "10.11.1"
KEY = "cli@example.invalid"
NEXT = "cli-next@example.invalid"


@pytest.fixture(scope="module")
def gnupghome(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ed25519 key: rpm keeps its signatures in another header tag than RSA ones."""
    harness.require("gpg", "apt-ftparchive", "createrepo_c", "rpmsign", "rpm", "dpkg-deb", root=False)
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    for email in (KEY, NEXT):
        params = (
            "%no-protection\nKey-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\nName-Real: mmpkg cli\n"
        )
        params += f"Name-Email: {email}\nExpire-Date: 0\n%commit\n"
        subprocess.run(["gpg", "--batch", "--gen-key"], input=params, text=True, env=env, check=True)
    return home


def _fingerprint(home: Path, key: str) -> str:
    colons = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-keys", key],
        env={**os.environ, "GNUPGHOME": str(home)}, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr"))


@pytest.fixture
def mmpkg(gnupghome: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Mmpkg:
    """Run `mmpkg ARGS...`; return (exit code, stdout, stderr)."""
    monkeypatch.setenv("GNUPGHOME", str(gnupghome))
    monkeypatch.delenv("MMPKG_SIGN_KEY", raising=False)

    return runner(capsys)


def test_add_list_remove_check(mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory) -> None:
    tree = tmp_path / "repo"
    v1, v2 = packages.build(V1), packages.build(V2)
    code, out, _ = mmpkg("repo", "add", tree, v1.deb, v1.rpm, "--sign-key", KEY)
    assert code == 0
    assert sorted(out.splitlines()) == [
        "added pool/main/m/mattermost-archive-keyring/mattermost-archive-keyring-1-2.noarch.rpm",
        "added pool/main/m/mattermost-archive-keyring/mattermost-archive-keyring_1-2_all.deb",
        "added pool/main/m/mattermost-omnibus/mattermost-omnibus_11.0.0-1_all.deb",
        "added pool/main/m/mattermost/mattermost-10.5.2-1.x86_64.rpm",
        "added pool/main/m/mattermost/mattermost_10.5.2-1_amd64.deb",
    ]  # the first add also publishes the keyring package and the transitional mattermost-omnibus
    # Again: nothing new, and it says so.
    code, out, _ = mmpkg("repo", "add", tree, v1.deb, "--sign-key", KEY)
    assert (code, out) == (0, "nothing added: channel stable already had every package\n")
    code, out, _ = mmpkg("repo", "add", tree, v2.deb, v2.rpm, "--sign-key", KEY, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["channel"] == "stable"
    # What the JSON says of each file is what the package's own tool says of it.
    for entry in report["added"]:
        if entry["format"] == "deb":
            fields = [
                "dpkg-deb",
                "--showformat",
                "${Package} ${Version}",
                "--show",
                str(tree / entry["path"]),
            ]
        else:
            fields = [
                "rpm",
                "-qp",
                "--nosignature",
                "--qf",
                "%{NAME} %{VERSION}-%{RELEASE}",
                str(tree / entry["path"]),
            ]
        assert subprocess.run(fields, capture_output=True, text=True, check=True).stdout.strip() == (
            f"{entry['name']} {entry['version']}"
        )

    code, out, _ = mmpkg("repo", "list", tree, "--json")
    listed = json.loads(out)["stable"]
    debs = [e["version"] for e in listed if e["format"] == "deb" and e["name"] == "mattermost"]
    assert debs == ["10.11.1-1", "10.5.2-1"]  # newest first
    code, out, _ = mmpkg("repo", "list", tree)
    assert out.splitlines()[0].split() == [
        "stable", "mattermost", "deb", "amd64", "10.11.1-1", "pool/main/m/mattermost/mattermost_10.11.1-1_amd64.deb",
    ]  # fmt: skip

    assert mmpkg("repo", "check", tree)[:2] == (0, "")
    code, out, _ = mmpkg("repo", "remove", tree, "mattermost", "10.5.2-1", "--sign-key", KEY)
    assert code == 0
    assert "removed pool/main/m/mattermost/mattermost_10.5.2-1_amd64.deb" in out.splitlines()
    code, out, _ = mmpkg("repo", "list", tree, "--channel", "stable", "--json")
    assert {(e["name"], e["version"]) for e in json.loads(out)["stable"]} == {
        ("mattermost", "10.11.1-1"),
        ("mattermost-archive-keyring", "1-2"),
        ("mattermost-omnibus", "11.0.0-1"),
    }
    assert mmpkg("repo", "check", tree, "--json")[:2] == (0, json.dumps({"problems": []}, indent=2) + "\n")


def test_check_lists_each_problem_and_fails(mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory) -> None:
    tree = tmp_path / "repo"
    v1 = packages.build(V1)
    assert mmpkg("repo", "add", tree, v1.deb, v1.rpm, "--sign-key", KEY)[0] == 0
    deb = tree / "pool/main/m/mattermost/mattermost_10.5.2-1_amd64.deb"
    deb.write_bytes(deb.read_bytes() + b"x")
    (tree / "pool/main/m/mattermost/stray.deb").write_bytes(b"")
    code, out, err = mmpkg("repo", "check", tree)
    assert code == 7
    assert out.splitlines() == [
        "pool/main/m/mattermost/mattermost_10.5.2-1_amd64.deb: size or SHA256 differs from dists/stable",
        "pool/main/m/mattermost/stray.deb: not in any index",
    ]
    assert err == "mmpkg: error: 2 problem(s) found; see above\n"


def test_export_key_is_the_signing_key(
    mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory, gnupghome: Path
) -> None:
    tree = tmp_path / "repo"
    v1 = packages.build(V1)
    assert mmpkg("repo", "add", tree, v1.deb, "--sign-key", KEY)[0] == 0
    code, out, _ = mmpkg("repo", "export-key", tree)
    assert code == 0

    def fingerprints(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> set[str]:
        colons = subprocess.run(
            ["gpg", "--batch", "--with-colons", *args],
            capture_output=True,
            text=True,
            check=True,
            input=input,
            env=env,
        ).stdout
        return {line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr")}

    env = {**os.environ, "GNUPGHOME": str(gnupghome)}
    assert fingerprints("--show-keys", input=out) == fingerprints("--list-keys", KEY, env=env)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["repo", "add", "{tree}", "{deb}", "--channel", "Stable!", "--sign-key", KEY],
            2,
            "argument --channel: bad channel name 'Stable!'",
        ),
        (["repo", "add", "{tree}", "{deb}"], 7, "no signing key: give --sign-key KEY or set MMPKG_SIGN_KEY"),
        (
            ["repo", "add", "{tree}", "{deb}", "--sign-key", "nobody@example.invalid"],
            7,
            "signing key 'nobody@example.invalid' is missing",
        ),
        (
            ["repo", "add", "{tree}", "/etc/hostname", "--sign-key", KEY],
            7,
            "/etc/hostname is not a .deb or .rpm package",
        ),
        (
            ["repo", "add", "/proc/nope", "{deb}", "--sign-key", KEY],
            2,
            "repository /proc/nope: cannot create /proc/nope: No such file or directory; choose another",
        ),
        (
            ["repo", "add", "{deb}/repo", "{deb}", "--sign-key", KEY],
            2,
            "/repo: cannot create {deb}/repo/.mmpkg: Not a directory; choose another directory",
        ),
        # Commands that change a repository make none: the tree is left uncreated.
        (["repo", "remove", "{tree}", "mattermost", "10.5.2-1", "--sign-key", KEY], 7, "is not a repository"),
        (["repo", "add-key", "{tree}", NEXT, "--sign-key", KEY], 7, "is not a repository"),
        (["repo", "retire-key", "{tree}", NEXT, "--sign-key", KEY], 7, "is not a repository"),
        (["repo", "list", "{tree}"], 7, "is not a repository: create it with 'mmpkg repo add"),
        (["repo", "check", "{tree}"], 7, "is not a repository"),
        (["repo", "client-config", "127.0.0.1/repo"], 7, "'127.0.0.1/repo' is not a repository URL"),
        (["repo", "client-config", "http://h/a\nb"], 7, "'http://h/a\\nb' is not a repository URL"),
        (
            ["repo", "client-config", "file:///nonexistent", "--commands"],
            7,
            "the repository's keys: cannot read /nonexistent/keys/archive-keyring.gpg: No such file",
        ),
        (
            ["repo", "client-config", "http://h/", "--format", "yum"],
            2,
            "argument --format: invalid choice: 'yum'",
        ),
        (["repo", "frobnicate"], 2, "invalid choice: 'frobnicate'"),
    ],
)
def test_errors_are_one_line_and_change_nothing(
    mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory, args: list[str], code: int, message: str
) -> None:
    tree = tmp_path / "repo"
    deb = packages.build(V1).deb
    got, out, err = mmpkg(*(a.format(tree=tree, deb=deb) for a in args))
    assert (got, out) == (code, "")
    assert err.count("\n") == 1 and message.format(deb=deb) in err, err
    assert not tree.exists()


def test_the_sign_key_may_come_from_the_environment(
    mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MMPKG_SIGN_KEY", KEY)
    assert mmpkg("repo", "add", tmp_path / "repo", packages.build(V1).deb)[0] == 0


def _apt_options(base: Path) -> list[str]:
    """apt-get reading only `base`: its sources, state and cache."""
    for d in ("parts", "state/lists/partial", "cache/archives/partial"):
        (base / d).mkdir(parents=True, exist_ok=True)
    return [
        "-o", "Dir::Etc::SourceList=/dev/null", "-o", f"Dir::Etc::SourceParts={base}/parts",
        "-o", f"Dir::State={base}/state", "-o", f"Dir::Cache={base}/cache",
    ]  # fmt: skip


def test_client_config_is_what_apt_reads(mmpkg: Mmpkg, tmp_path: Path) -> None:
    harness.require("apt-get", "apt-config", root=False)
    code, out, _ = mmpkg(
        "repo", "client-config", "http://127.0.0.1:9/mm/", "--channel", "esr", "--unattended"
    )
    assert code == 0
    code, js, _ = mmpkg(
        "repo", "client-config", "http://127.0.0.1:9/mm/", "--channel", "esr", "--unattended", "--json"
    )
    files = {f["path"]: f["text"] for f in json.loads(js)}
    # The text form is the same files, each under a comment naming where it goes.
    assert out == "\n".join(f"# {path}\n{text}" for path, text in files.items())
    sources = "/etc/apt/sources.list.d/mattermost.sources"
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts/mattermost.sources").write_text(files[sources])
    uris = subprocess.run(
        ["apt-get", *_apt_options(tmp_path), "update", "--print-uris"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "'http://127.0.0.1:9/mm/dists/esr/InRelease'" in uris
    unattended = tmp_path / "uu.conf"
    unattended.write_text(files["/etc/apt/apt.conf.d/52mattermost-unattended-upgrades"])
    dump = subprocess.run(
        ["apt-config", "-c", str(unattended), "dump"], capture_output=True, text=True, check=True
    )
    assert 'Unattended-Upgrade::Origins-Pattern:: "origin=mmpkg,suite=esr";' in dump.stdout.splitlines()


def test_keys_rotate_on_the_command_line(
    mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory, gnupghome: Path
) -> None:
    tree = tmp_path / "repo"
    first, second = _fingerprint(gnupghome, KEY), _fingerprint(gnupghome, NEXT)
    assert mmpkg("repo", "add", tree, packages.build(V1).deb, "--sign-key", KEY)[0] == 0
    code, out, _ = mmpkg("repo", "keys", tree)
    assert code == 0
    assert out.startswith(f"{first}  mmpkg cli <{KEY}>  created ") and out.endswith(
        ", never expires  (signs)\n"
    )

    # The next key joins the set (signed by the current one); later it signs, then the first goes.
    code, out, _ = mmpkg("repo", "add-key", tree, NEXT, "--json")  # signs with the key it signed with last
    assert code == 0
    assert [(k["fingerprint"], k["signing"]) for k in json.loads(out)] == [(first, True), (second, False)]
    assert mmpkg("repo", "add", tree, packages.build(V2).deb, "--sign-key", NEXT)[0] == 0
    code, _, err = mmpkg("repo", "retire-key", tree, NEXT)
    assert code == 7 and f"cannot retire {second} and sign with it" in err
    code, out, _ = mmpkg("repo", "retire-key", tree, first[-16:], "--json")
    assert code == 0
    assert [(k["fingerprint"], k["signing"]) for k in json.loads(out)] == [(second, True)]
    # What the tree serves is the new key alone, and the real tools verify against it.
    code, exported, _ = mmpkg("repo", "export-key", tree)
    shown = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--show-keys"],
        input=exported,
        capture_output=True,
        text=True,
        check=True,
    )
    assert [line.split(":")[9] for line in shown.stdout.splitlines() if line.startswith("fpr")] == [second]
    assert mmpkg("repo", "check", tree)[:2] == (0, "")
    code, out, _ = mmpkg("repo", "list", tree, "--json")
    keyrings = sorted(
        e["version"]
        for e in json.loads(out)["stable"]
        if e["name"] == "mattermost-archive-keyring" and e["format"] == "deb"
    )
    assert keyrings == ["1-2", "2-2", "3-2"]  # one for each key set; clients take the newest


def _without_curl(root: harness.Root) -> None:
    """`root` as a minimal Debian server is: no curl to run. Only the program goes: the package
    stays installed, since mattermost depends on it and this root has no Debian archive for apt
    to fetch it from, as a server's apt would."""
    root.run("dpkg-divert", "--local", "--rename", "--divert", "/usr/bin/curl.gone", "--add", "/usr/bin/curl")
    assert root.run("sh", "-c", "command -v curl", check=False).returncode != 0


def _set_up_command(mmpkg: Mmpkg, url: str, *args: str) -> str:
    """What `client-config URL --commands ARGS` prints: one command, the same as its JSON's."""
    code, out, _ = mmpkg("repo", "client-config", url, "--commands", *args)
    assert code == 0
    code, js, _ = mmpkg("repo", "client-config", url, "--commands", *args, "--json")
    assert code == 0
    assert json.loads(js) == [out]
    return out


def test_the_set_up_command_names_the_keys_it_trusts(
    mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory, gnupghome: Path
) -> None:
    """The command carries the keys the URL serves (a file: URL's read in place), and says which
    they are, for the administrator to compare with `mmpkg repo keys`."""
    tree = tmp_path / "repo"
    assert mmpkg("repo", "add", tree, packages.build(V1).deb, "--sign-key", KEY)[0] == 0
    for fmt in ("apt", "dnf"):
        out = _set_up_command(mmpkg, f"file://{tree}", "--format", fmt)
        assert f"#   {_fingerprint(gnupghome, KEY)}  mmpkg cli <{KEY}>" in out.splitlines()


@pytest.mark.parametrize(
    ("fmt", "served", "message"),
    [
        ("apt", None, "the repository's keys: not found at {url}/keys/archive-keyring.gpg (404)"),
        ("apt", "a page", "{url}/keys/archive-keyring.gpg holds no OpenPGP public key: is {url} the"),
        ("dnf", "binary keys", "{url}/keys/archive-keyring.asc holds binary keys, not armoured ones"),
    ],
    ids=["missing", "a-page", "dnf-binary"],
)
def test_no_set_up_command_without_the_served_keys(
    mmpkg: Mmpkg, tmp_path: Path, gnupghome: Path, fmt: str, served: str | None, message: str
) -> None:
    """A URL that serves no keys it could write (a wrong one) is refused where the command is
    made, in one line: not left for apt or dnf on the server to fail on without saying why."""
    from tests.test_repo import _serve

    if served is not None:
        name = "archive-keyring.gpg" if fmt == "apt" else "archive-keyring.asc"
        (tmp_path / "keys").mkdir()
        (tmp_path / "keys" / name).write_bytes(
            b"<html>Welcome</html>\n"
            if served == "a page"
            else subprocess.run(
                ["gpg", "--batch", "--export", KEY],
                env={**os.environ, "GNUPGHOME": str(gnupghome)},
                capture_output=True,
                check=True,
            ).stdout
        )
    with _serve(tmp_path) as url:
        code, out, err = mmpkg("repo", "client-config", url, "--format", fmt, "--commands")
    assert (code, out) == (7, "")
    assert err.count("\n") == 1 and message.format(url=url) in err, err


@pytest.mark.generations
@pytest.mark.install
def test_a_server_is_set_up_in_one_command(
    mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory, root: harness.Root
) -> None:
    """`client-config --commands --unattended`, run as printed with `sh -e` on a fresh Debian
    server without curl, installs Mattermost from the served tree, on each generation; the
    keyring package then owns the very key file the command wrote, and unattended-upgrades'
    file is in place."""
    from tests.test_repo import _serve

    tree = tmp_path / "repo"
    v1, v2 = packages.build(V1), packages.build(V2)
    assert mmpkg("repo", "add", tree, v1.deb, "--sign-key", KEY)[0] == 0
    _without_curl(root)
    root.sh("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*")
    with _serve(tree) as url:
        root.sh(_set_up_command(mmpkg, url, "--unattended"))
        assert root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout == f"{V1}-1"
        owner = root.run("dpkg", "-S", keyring.DEB_KEYRING).stdout
        assert owner.startswith("mattermost-archive-keyring: ")
        # What the command wrote there was the package's file already, byte for byte.
        assert root.run("dpkg", "--verify", keyring.NAME).stdout == ""
        unattended = client_config(url, "stable", ClientFormat.APT, unattended=True)[1]
        assert root.read_text(unattended.path) == unattended.text
        dump = root.run("apt-config", "dump").stdout.splitlines()
        assert 'Unattended-Upgrade::Origins-Pattern:: "origin=mmpkg,suite=stable";' in dump
        assert mmpkg("repo", "add", tree, v2.deb)[0] == 0
        root.run("apt-get", "update", "--error-on=any")
        root.run("apt-get", "upgrade", "-y", "-o", "Dpkg::Options::=--force-confold")
        assert root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout == f"{V2}-1"


@pytest.mark.install
def test_the_set_up_command_stops_at_the_first_failure(
    mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory, root: harness.Root
) -> None:
    """Pasted into a shell that goes on after a failed command, the set-up still stops at its
    first failure. The sources' directory full: no source, no partial file, and apt not run. The
    repository unreachable: apt-get update fails and says so, and nothing is installed. Once the
    cause is gone, the same command completes."""
    from tests.test_repo import _serve

    tree = tmp_path / "repo"
    assert mmpkg("repo", "add", tree, packages.build(V1).deb, "--sign-key", KEY)[0] == 0
    _without_curl(root)
    root.sh("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*")
    calls = "/root/apt-get.calls"
    root.wrap("apt-get", lambda real: f'#!/bin/sh\necho "$*" >>{calls}\nexec {real} "$@"\n')
    with _serve(tree) as url:
        command = _set_up_command(mmpkg, url)
    port = int(url.rsplit(":", 1)[1])
    parts = "/etc/apt/sources.list.d"

    root.mount_small_fs(parts, size="1m")
    root.fill(parts)
    failed = root.run("sh", "-c", command, check=False)
    assert failed.returncode != 0 and "No space left on device" in failed.stderr
    assert root.run("ls", "-A", parts).stdout.split() == [harness.FILLER]
    assert root.run("find", "/etc", "/usr/share/keyrings", "-name", "*.mmpkg-new").stdout == ""
    # The keys went first, whole: the keyring package's file, before the package.
    assert root.path(keyring.DEB_KEYRING).read_bytes() == (tree / "keys/archive-keyring.gpg").read_bytes()
    assert not root.exists(calls)
    root.unfill(parts)

    # Nothing answers at the URL now: for apt-get update alone a warning, for the command the end.
    failed = root.run("sh", "-c", command, check=False)
    assert failed.returncode != 0
    assert f"Failed to fetch {url}/dists/stable/InRelease" in failed.stdout + failed.stderr
    assert root.read_text(calls).splitlines() == ["update --error-on=any"]
    assert root.run("dpkg-query", "-W", keyring.NAME, check=False).returncode != 0

    with _serve(tree, port):
        root.run("sh", "-c", command)
    assert root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout == f"{V1}-1"
    # Without --unattended, no unattended-upgrades file.
    assert not root.exists(client_config(url, "stable", ClientFormat.APT, unattended=True)[1].path)


@pytest.mark.install
def test_a_dnf_server_is_set_up_in_one_command(
    mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory, root: harness.Root
) -> None:
    """`client-config --format dnf --commands --unattended`, run as printed with `sh -e` in a root
    without curl, installs Mattermost with the root's own dnf, gpgcheck and repo_gpgcheck in
    force; the keyring package owns the key file the command wrote, and dnf-automatic's file is
    in place."""
    from tests.test_repo import _serve

    harness.require(*harness.DNF_TOOLS)
    tree = tmp_path / "repo"
    assert mmpkg("repo", "add", tree, packages.build(V1).rpm, "--sign-key", KEY)[0] == 0
    _without_curl(root)
    # What a Fedora server has and this Debian root's rpm database does not: /bin/sh, curl, ...
    root.rpm("-i", harness.base_provides_rpm())
    with _serve(tree) as url:
        done = root.sh(_set_up_command(mmpkg, url, "--format", "dnf", "--unattended"))
    assert "Importing GPG key" in done.stdout + done.stderr
    assert root.rpm_query("--qf", "%{VERSION}-%{RELEASE}", "mattermost") == f"{V1}-1"
    assert root.rpm_query("-qf", "--qf", "%{NAME}", RPM_KEY) == keyring.NAME
    assert root.read_text(RPM_KEY) == (tree / "keys/archive-keyring.asc").read_text()
    automatic = client_config(url, "stable", ClientFormat.DNF, unattended=True)[1]
    assert root.read_text(automatic.path) == automatic.text


def test_a_closed_stdout_ends_every_listing_quietly(
    mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mmpkg repo list REPO | head -3`, and every other repository command that prints a
    listing: the status of a program ended by SIGPIPE, no traceback, no message."""
    tree = tmp_path / "repo"
    assert mmpkg("repo", "add", tree, packages.build(V1).deb, "--sign-key", KEY)[0] == 0
    (tree / "pool/main/m/mattermost/stray.deb").write_bytes(b"")  # so that check has a problem to list
    for args in (["list"], ["list", "--json"], ["check"], ["keys"], ["export-key"]):
        with closed_stdout(monkeypatch):
            code, _, err = mmpkg("repo", *args, tree)
        assert (code, err) == (CLOSED_OUTPUT, ""), args


def test_a_channel_the_repository_lacks_is_an_error_naming_those_it_has(
    mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory
) -> None:
    tree = tmp_path / "repo"
    deb = packages.build(V1).deb
    assert mmpkg("repo", "add", tree, deb, "--sign-key", KEY)[0] == 0
    assert mmpkg("repo", "add", tree, deb, "--sign-key", KEY, "--channel", "esr")[0] == 0
    for args in (["list", tree], ["remove", tree, "mattermost", f"{V1}-1", "--sign-key", KEY]):
        code, out, err = mmpkg("repo", *args, "--channel", "nope")
        assert (code, out) == (7, ""), args
        assert err == f"mmpkg: error: {tree} has no channel 'nope': its channels are esr, stable\n"


@pytest.mark.parametrize(
    ("name", "version", "hint"),
    [
        ("mattermost", V1, f"; did you mean {V1}-1?"),
        ("mattermost", f"{V1}-2", f"; did you mean {V1}-1?"),
        ("mattermost", "11.0.0-rc1", "; did you mean 11.0.0~rc1-1?"),  # upstream's spelling
        ("mattermost", "9.11.0", ""),
        (
            "mattermost-team",
            V1,
            "; its packages are mattermost, mattermost-archive-keyring, mattermost-omnibus",
        ),
    ],
)
def test_remove_says_what_was_meant(
    mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory, name: str, version: str, hint: str
) -> None:
    """`repo remove REPO mattermost 10.11.4` when 10.11.4-1 is published: the revisions it has."""
    tree = tmp_path / "repo"
    assert (
        mmpkg(
            "repo", "add", tree, packages.build(V1).deb, packages.build("11.0.0-rc1").rpm, "--sign-key", KEY
        )[0]
        == 0
    )
    code, out, err = mmpkg("repo", "remove", tree, name, version, "--sign-key", KEY)
    assert (code, out) == (7, "")
    assert err == f"mmpkg: error: {name} {version} is not published in stable{hint}\n"


def test_quiet_leaves_the_results_asked_for_and_drops_the_reports(
    mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory
) -> None:
    """-q is errors only: a change's report goes, unless --json asks for it; a listing stays."""
    tree = tmp_path / "repo"
    v1, v2 = packages.build(V1), packages.build(V2)
    assert mmpkg("-q", "repo", "add", tree, v1.deb, "--sign-key", KEY) == (0, "", "")
    code, out, _ = mmpkg("repo", "add", tree, v2.deb, "--sign-key", KEY, "-q", "--json")
    assert code == 0 and [e["version"] for e in json.loads(out)["added"]] == [f"{V2}-1"]
    assert mmpkg("-q", "repo", "remove", tree, "mattermost", f"{V2}-1", "--sign-key", KEY) == (0, "", "")
    assert mmpkg("-q", "repo", "add-key", tree, NEXT) == (0, "", "")
    assert mmpkg("-q", "repo", "retire-key", tree, NEXT) == (0, "", "")
    for args in (["list"], ["keys"], ["export-key"]):
        code, out, err = mmpkg("-q", "repo", *args, tree)
        assert (code, err) == (0, "") and out == mmpkg("repo", *args, tree)[1] != "", args
    (tree / "pool/main/m/mattermost/stray.deb").write_bytes(b"")
    assert mmpkg("-q", "repo", "check", tree) == (
        7, "pool/main/m/mattermost/stray.deb: not in any index\n", "mmpkg: error: 1 problem(s) found; see above\n"
    )  # fmt: skip


def test_keep_is_stored_per_channel_and_later_commands_use_it(
    mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory
) -> None:
    """`--keep N` once: the channel keeps N from then on; `repo config` shows and sets it."""
    tree = tmp_path / "repo"
    v1, v2 = packages.build(V1), packages.build(V2)
    assert mmpkg("repo", "add", tree, v1.deb, "--sign-key", KEY, "--keep", "1")[0] == 0
    assert mmpkg("repo", "add", tree, v1.deb, "--sign-key", KEY, "--channel", "esr")[0] == 0
    assert mmpkg("repo", "config", tree) == (0, "esr      keep 5 (default)\nstable   keep 1 (stored)\n", "")
    # No --keep: the stored 1 withdraws the older version, and says so.
    code, out, _ = mmpkg("repo", "add", tree, v2.deb, "--sign-key", KEY)
    assert code == 0
    assert "pruned pool/main/m/mattermost/mattermost_10.5.2-1_amd64.deb" in out.splitlines()
    code, out, _ = mmpkg("repo", "add", tree, v2.deb, "--sign-key", KEY, "--channel", "esr", "--json")
    assert (json.loads(out)["pruned"], json.loads(out)["keep"]) == ([], 5)
    # Set without an add; the next add in the channel keeps that many.
    assert mmpkg("repo", "config", tree, "--channel", "esr", "--keep", "1") == (
        0, "esr      keep 1 (stored)\n", ""
    )  # fmt: skip
    code, out, _ = mmpkg("repo", "config", tree, "--json")
    assert json.loads(out) == {"esr": {"keep": 1, "stored": True}, "stable": {"keep": 1, "stored": True}}
    code, out, _ = mmpkg("repo", "add", tree, v2.rpm, "--sign-key", KEY, "--channel", "esr")
    assert "pruned pool/main/m/mattermost/mattermost_10.5.2-1_amd64.deb" in out.splitlines()
    assert mmpkg("-q", "repo", "config", tree, "--channel", "esr", "--keep", "2") == (0, "", "")
    assert mmpkg("repo", "config", tree, "--channel", "esr")[1] == "esr      keep 2 (stored)\n"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--keep", "3"], 2, "--keep needs --channel NAME"),
        (["--channel", "rc", "--keep", "3"], 7, "has no channel 'rc': its channels are stable"),
        (["--channel", "rc"], 7, "has no channel 'rc': its channels are stable"),
    ],
)
def test_config_refuses_what_it_cannot_set(
    mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory, args: list[str], code: int, message: str
) -> None:
    tree = tmp_path / "repo"
    assert mmpkg("repo", "add", tree, packages.build(V1).deb, "--sign-key", KEY)[0] == 0
    got, out, err = mmpkg("repo", "config", tree, *args)
    assert (got, out) == (code, "")
    assert err.count("\n") == 1 and message in err, err
    assert mmpkg("repo", "config", tree)[1] == "stable   keep 5 (default)\n"


def test_a_dry_run_says_what_would_change_and_changes_nothing(
    mmpkg: Mmpkg, tmp_path: Path, packages: PackageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "repo"
    v1, v2 = packages.build(V1), packages.build(V2)
    # A repository that is not there yet: nothing made, and no signing key needed.
    code, out, err = mmpkg("repo", "add", tree, v1.deb, "--dry-run")
    assert (code, out, err) == (0, "would add pool/main/m/mattermost/mattermost_10.5.2-1_amd64.deb\n", "")
    assert not tree.exists()
    # One that add could not make: said as add would say it.
    code, out, err = mmpkg("repo", "add", v1.deb / "repo", v1.deb, "--dry-run")
    assert (code, out) == (2, "")
    assert (
        err
        == f"mmpkg: error: repository {v1.deb / 'repo'}: {v1.deb} is not a directory; choose another directory\n"
    )
    assert mmpkg("repo", "add", tree, v1.deb, "--sign-key", KEY)[0] == 0
    before = tree_hash(tree)
    code, out, _ = mmpkg("-q", "repo", "add", tree, v2.deb, "--dry-run", "--keep", "1")
    assert (code, out) == (0, (
        "would add pool/main/m/mattermost/mattermost_10.11.1-1_amd64.deb\n"
        "would prune pool/main/m/mattermost/mattermost_10.5.2-1_amd64.deb\n"
    ))  # fmt: skip
    code, out, _ = mmpkg("repo", "add", tree, v1.rpm, "--dry-run", "--keep", "1", "--json")
    report = json.loads(out)
    assert (report["dry_run"], report["keep"], [e["path"] for e in report["added"]]) == (
        True, 1, ["pool/main/m/mattermost/mattermost-10.5.2-1.x86_64.rpm"]
    )  # fmt: skip
    assert tree_hash(tree) == before  # the --keep 1 of a dry run is not stored either
    assert mmpkg("repo", "config", tree)[1] == "stable   keep 5 (default)\n"
