"""Self-tests of the install harness with toy packages built here by dpkg-deb and rpmbuild.

The expected maintainer-script sequences are those dpkg (as Debian policy describes them) and rpm
run, in the order they run them.
"""

from __future__ import annotations

import os
import pwd
import socket
from pathlib import Path

import pytest

from tests.support import harness

pytestmark = pytest.mark.install

DEB_LOG = "/var/log/toy-deb.log"
RPM_LOG = "/var/log/toy-rpm.log"


def build_toy_deb(workdir: Path, version: str) -> Path:
    """A deb whose maintainer scripts log their arguments, with a conffile and a system user."""
    tree = workdir / f"toy-{version}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "etc/toy").mkdir(parents=True)
    (tree / "etc/toy/toy.conf").write_text(f"version={version}\n")
    (tree / "DEBIAN/conffiles").write_text("/etc/toy/toy.conf\n")
    (tree / "DEBIAN/control").write_text(
        f"Package: toy\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: Harness <harness@example.invalid>\nDepends: jq, adduser\n"
        "Description: mmpkg harness self-test package\n"
    )
    extra = {
        "postinst": 'if [ "$1" = configure ]; then\n'
        "  adduser --system --group --home /var/lib/toy --no-create-home toy >/dev/null\n"
        "  install -d -o toy -g toy -m 0750 /var/lib/toy\nfi\n",
        "postrm": 'if [ "$1" = purge ]; then\n'
        "  rm -rf /var/lib/toy\n  deluser --system toy >/dev/null 2>&1 || true\nfi\n",
    }
    for script in ("preinst", "postinst", "prerm", "postrm"):
        path = tree / "DEBIAN" / script
        path.write_text(f'#!/bin/sh\nset -e\necho "{script} [$#] $*" >> {DEB_LOG}\n{extra.get(script, "")}')
        path.chmod(0o755)
    deb = workdir / f"toy_{version}_all.deb"
    harness.run_host(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", tree, deb])
    return deb


TOY_SPEC = f"""\
Name: toy
Version: %{{ver}}
Release: 1
Summary: mmpkg harness self-test package
License: MIT
BuildArch: noarch
Requires: jq, shadow-utils

%description
Scriptlets log their argument.

%install
mkdir -p %{{buildroot}}/etc/toy %{{buildroot}}/usr/share/toy
echo "version=%{{ver}}" > %{{buildroot}}/etc/toy/toy.conf
echo "%{{ver}}" > %{{buildroot}}/usr/share/toy/VERSION

%pre
echo "pre $1" >> {RPM_LOG}
%post
echo "post $1" >> {RPM_LOG}
%preun
echo "preun $1" >> {RPM_LOG}
%postun
echo "postun $1" >> {RPM_LOG}

%files
%config(noreplace) /etc/toy/toy.conf
/usr/share/toy
"""


@pytest.fixture(scope="module")
def toy_debs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    harness.require("dpkg-deb")
    workdir = tmp_path_factory.mktemp("debs")
    return {v: build_toy_deb(workdir, v) for v in ("1.0", "2.0")}


@pytest.fixture(scope="module")
def toy_rpms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    harness.require(*harness.RPM_TOOLS)
    workdir = tmp_path_factory.mktemp("rpms")
    return {v: harness.build_rpm(TOY_SPEC, workdir, defines={"ver": v}) for v in ("1.0", "2.0")}


def test_require_fails_instead_of_skipping_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no-such-tool-xyz"):
        harness.require("no-such-tool-xyz")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="no-such-tool-xyz"):
        harness.require("no-such-tool-xyz")


def test_chroot_is_isolated_and_services_cannot_start(root: harness.Root) -> None:
    env = dict(line.split("=", 1) for line in root.run("env").stdout.splitlines())
    assert env["LANG"] == "C.UTF-8"
    assert env["DEBIAN_FRONTEND"] == "noninteractive"
    assert "PYTEST_CURRENT_TEST" not in env
    assert root.run("findmnt", "-n", "-o", "FSTYPE", "/run").stdout.strip() == "tmpfs"
    assert root.run("stat", "-c", "%a", "/run").stdout.strip() == "755"
    assert root.run("test", "-e", "/proc/self/status", check=False).returncode == 0
    assert root.run("test", "-c", "/dev/null", check=False).returncode == 0
    assert root.run(harness.POLICY_RC_D, check=False).returncode == 101
    # Writes land in the per-test upper layer, never in the shared pristine root.
    root.write_text("/etc/probe", "inside\n")
    assert (root.upper / "etc/probe").exists()
    assert not (root.lower / "etc/probe").exists()


def test_command_failure_shows_command_and_output(root: harness.Root) -> None:
    with pytest.raises(harness.CommandFailed) as failure:
        root.sh("echo to-stdout; echo to-stderr >&2; exit 3")
    message = str(failure.value)
    assert "exit code 3" in message
    assert "echo to-stdout" in message
    assert "to-stdout" in failure.value.stdout
    assert "to-stderr" in failure.value.stderr


def test_paths_and_owners_are_resolved_inside_the_root(root: harness.Root) -> None:
    root.write_text("/etc/probe", "inside\n")
    root.run("ln", "-s", "/etc", "/opt/etc-link")  # absolute: would hit the host's /etc
    assert root.read_text("/opt/etc-link/probe") == "inside\n"
    assert root.path("/opt/etc-link/probe") == root.dir / "etc/probe"
    assert root.stat("/opt/etc-link", follow_symlinks=False).kind == "symlink"
    assert root.exists("/opt/etc-link/probe")
    root.run("useradd", "--system", "--user-group", "harnessu")
    root.run("install", "-o", "harnessu", "-g", "harnessu", "-m", "0640", "/dev/null", "/srv/f")
    info = root.stat("/srv/f")
    assert (info.owner, info.group, info.mode, info.kind) == ("harnessu", "harnessu", 0o640, "file")
    with pytest.raises(KeyError):
        pwd.getpwnam("harnessu")  # the name really came from the root's /etc/passwd


def test_small_file_system_fills_and_wrapped_program_comes_back(root: harness.Root) -> None:
    root.run("install", "-d", "-o", "nobody", "-m", "0710", "/srv/small")
    root.write_text("/srv/small/kept", "kept\n")
    root.mount_small_fs("/srv/small", size="256k")
    assert root.read_text("/srv/small/kept") == "kept\n"
    assert (root.stat("/srv/small").owner, root.stat("/srv/small").mode) == ("nobody", 0o710)

    root.fill("/srv/small")
    full = root.run("sh", "-c", "head -c 8192 /dev/zero > /srv/small/more", check=False)
    assert full.returncode != 0 and "No space left on device" in full.stderr
    root.unfill("/srv/small")
    root.run("sh", "-c", "head -c 8192 /dev/zero > /srv/small/more")

    root.wrap("cp", lambda real: f'#!/bin/sh\necho wrapped >&2\nexec {real} "$@"\n')
    copied = root.run("cp", "/srv/small/kept", "/srv/small/copy")
    assert copied.stderr == "wrapped\n" and root.read_text("/srv/small/copy") == "kept\n"
    root.unwrap_all()
    assert root.run("cp", "/srv/small/kept", "/srv/small/again").stderr == ""


def test_frozen_root_is_a_layer_for_later_roots(pristine: Path) -> None:
    with harness.Root(pristine, name="to-freeze") as first:
        first.write_text("/etc/frozen", "set up once\n")
        first.path("/etc/hostname").unlink()
        layer = first.freeze(harness.session_dir() / "frozen-layer")
    try:
        with harness.Root(pristine, layers=[layer], name="from-layer") as later:
            assert later.read_text("/etc/frozen") == "set up once\n"
            assert not later.exists("/etc/hostname")  # the whiteout came along
            later.write_text("/etc/frozen", "changed\n")
        assert (layer / "etc/frozen").read_text() == "set up once\n"
    finally:
        harness.run_host(["rm", "-rf", "--one-file-system", layer])


def test_dpkg_install_upgrade_remove_purge(root: harness.Root, toy_debs: dict[str, Path]) -> None:
    root.dpkg("-i", toy_debs["1.0"])
    assert root.dpkg_status("toy") == "install ok installed"
    info = root.stat("/var/lib/toy")
    assert (info.owner, info.group, info.mode) == ("toy", "toy", 0o750)

    root.write_text("/etc/toy/toy.conf", "admin=edited\n")
    # Would fail at the conffile prompt (stdin at EOF) without the default --force-confold.
    root.dpkg("-i", toy_debs["2.0"])
    assert root.read_text("/etc/toy/toy.conf") == "admin=edited\n"
    assert root.read_text("/etc/toy/toy.conf.dpkg-dist") == "version=2.0\n"

    root.dpkg("-r", "toy")
    assert root.dpkg_status("toy") == "deinstall ok config-files"
    assert root.exists("/etc/toy/toy.conf")
    root.dpkg("-P", "toy")
    assert root.dpkg_status("toy") == "not-installed"
    assert not root.exists("/etc/toy/toy.conf")
    assert root.run("getent", "passwd", "toy", check=False).returncode == 2

    assert root.read_text(DEB_LOG).splitlines() == [
        "preinst [1] install",
        "postinst [2] configure ",  # $2 is present but empty on a fresh install
        "prerm [2] upgrade 2.0",
        "preinst [3] upgrade 1.0 2.0",
        "postrm [2] upgrade 2.0",
        "postinst [2] configure 1.0",
        "prerm [1] remove",
        "postrm [1] remove",
        "postrm [1] purge",
    ]


def test_apt_resolves_dependencies_and_downgrades(root: harness.Root, toy_debs: dict[str, Path]) -> None:
    root.apt_install(toy_debs["2.0"])
    with pytest.raises(harness.CommandFailed):
        root.apt_install(toy_debs["1.0"])
    root.apt_install(toy_debs["1.0"], allow_downgrades=True)
    assert root.run("dpkg-query", "-W", "-f=${Version}", "toy").stdout == "1.0"
    assert root.read_text(DEB_LOG).splitlines()[-4:] == [
        "prerm [2] upgrade 1.0",
        "preinst [3] upgrade 2.0 1.0",
        "postrm [2] upgrade 1.0",
        "postinst [2] configure 2.0",
    ]


def test_rpm_install_upgrade_erase(root: harness.Root, toy_rpms: dict[str, Path]) -> None:
    root.rpm("-i", toy_rpms["1.0"])
    assert root.rpm_query("toy") == "toy-1.0-1.noarch"
    root.write_text("/etc/toy/toy.conf", "admin=edited\n")
    root.rpm("-U", toy_rpms["2.0"])
    assert root.rpm_query("--queryformat", "%{VERSION}", "toy") == "2.0"
    assert root.read_text("/etc/toy/toy.conf") == "admin=edited\n"
    assert root.exists("/etc/toy/toy.conf.rpmnew")
    root.rpm("-e", "toy")
    assert not root.rpm_installed("toy")
    assert root.exists("/etc/toy/toy.conf.rpmsave")
    assert root.read_text(RPM_LOG).splitlines() == [
        "pre 1", "post 1",
        "pre 2", "post 2", "preun 1", "postun 1",
        "preun 0", "postun 0",
    ]  # fmt: skip


def test_dnf_from_local_repo_shares_rpms_database(
    root: harness.Root, toy_rpms: dict[str, Path], tmp_path: Path
) -> None:
    harness.require(*harness.DNF_TOOLS)
    repo = harness.make_local_rpm_repo(toy_rpms.values(), tmp_path / "repo")
    root.dnf("install", "toy-1.0", repo_dir=repo)
    assert root.rpm_installed(harness.SHIM_NAME)
    # One database: what dnf installed, the host's rpm --dbpath and the root's own rpm both see.
    assert root.rpm_query("toy") == "toy-1.0-1.noarch"
    assert root.run("rpm", "-q", "toy").stdout.strip() == "toy-1.0-1.noarch"
    root.dnf("upgrade", "toy", repo_dir=repo)
    assert root.rpm_query("toy") == "toy-2.0-1.noarch"
    root.dnf("remove", "toy", repo_dir=repo)
    assert not root.rpm_installed("toy")
    assert root.read_text(RPM_LOG).splitlines() == [
        "pre 1", "post 1", "pre 2", "post 2", "preun 1", "postun 1", "preun 0", "postun 0",
    ]  # fmt: skip
    databases = sorted(p.relative_to(root.upper) for p in root.upper.rglob("rpmdb.sqlite"))
    assert databases == [Path("var/lib/rpm/rpmdb.sqlite")]
    assert root.path("/root/.rpmdb", follow_symlinks=False).is_symlink()


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.systemd
def test_booted_root_starts_a_unit_and_powers_off(root: harness.Root, booted: harness.BootFactory) -> None:
    port = free_loopback_port()
    root.path("/srv/toy").mkdir(parents=True)
    root.write_text("/srv/toy/index.html", "served from the booted root\n")
    root.write_text(
        "/etc/systemd/system/toy-http.service",
        "[Service]\n"
        f"ExecStart=/usr/bin/python3 -m http.server {port} --bind 127.0.0.1 --directory /srv/toy\n",
    )
    container = booted()
    assert not root.exists(harness.POLICY_RC_D)
    assert root.run("cat", "/proc/1/comm").stdout.strip() == "systemd"  # via nsenter now
    container.exec("systemctl", "start", "toy-http.service")
    container.wait_for(["systemctl", "is-active", "--quiet", "toy-http.service"], timeout=10)
    container.wait_for(["curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{port}/"])
    page = container.exec("curl", "-fsS", f"http://127.0.0.1:{port}/index.html").stdout
    assert page == "served from the booted root\n"
    assert "Started toy-http.service" in container.journal("toy-http.service")

    assert container.poweroff() == 0
    # Back to the chroot tier on the same directory.
    assert root.booted is None
    assert root.run(harness.POLICY_RC_D, check=False).returncode == 101
    assert root.run("test", "-e", "/proc/self/status", check=False).returncode == 0


@pytest.mark.systemd
def test_roots_booted_side_by_side_keep_their_units_apart(
    pristine: Path, root: harness.Root, booted: harness.BootFactory
) -> None:
    """Two containers booted from one process (as pytest-xdist workers are): each systemd has a
    cgroup of its own, so stopping a unit in one leaves the same unit in the other running."""
    unit = "[Service]\nExecStart=/bin/sleep infinity\n"
    with harness.Root(pristine, name="side-by-side") as other:
        for r in (root, other):
            r.write_text("/etc/systemd/system/toy-sleep.service", unit)
        first, second = booted(root), booted(other)
        assert set(harness.own_cgroups(first.leader)).isdisjoint(harness.own_cgroups(second.leader))
        for container in (first, second):
            container.exec("systemctl", "start", "toy-sleep.service")
        first.exec("systemctl", "stop", "toy-sleep.service")
        assert (
            second.exec("systemctl", "is-active", "toy-sleep.service", check=False).stdout.strip() == "active"
        )
        assert second.poweroff() == 0
        assert first.exec("systemctl", "is-system-running", check=False).stdout.strip() in {
            "running",
            "degraded",
        }


def test_a_daemon_left_in_a_root_dies_with_it(pristine: Path) -> None:
    """dnf leaves a gpg-agent in the root it imported a key in; left running, such daemons use
    up the inotify instances later booted roots need."""
    with harness.Root(pristine, name="daemon") as root:
        root.run("sh", "-c", "setsid sleep 600 </dev/null >/dev/null 2>&1 &")
        inside = [
            p for p in Path("/proc").iterdir()
            if p.name.isdigit() and _root_of(p) == str(root.dir)
        ]  # fmt: skip
        assert inside
    # Dead: gone, or a zombie its new parent has not reaped yet.
    harness.wait_until(
        lambda: all(_state(p) in {"", "Z"} for p in inside), timeout=10, what="the daemon's end"
    )


def _state(proc: Path) -> str:
    try:
        return (proc / "stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return ""


def _root_of(proc: Path) -> str:
    try:
        return os.readlink(proc / "root")
    except OSError:
        return ""
