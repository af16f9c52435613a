"""A throw-away root as a client of a served repository, with its own apt or dnf: what
`mattermost-pkg upgrade` and `rollback` run, so they are tested with both package managers.

The dnf side runs Debian's dnf inside the root (not the host's with --installroot), so that the
root's `mattermost-pkg` finds it; the harness's provides shim stands for the Debian packages the
rpm requires, /bin/sh among them, in a transaction of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmpkg.repo import Repository, keyring
from mmpkg.repo.clients import RPM_KEY, ClientFormat, client_config
from tests.support import harness

CONF = [arg for c in harness.CONF_OLD for arg in ("-o", f"Dpkg::Options::={c}")]


@dataclass
class RepoClient:
    root: harness.Root
    fmt: str  # "deb" or "rpm"

    def configure(self, repo: Repository, url: str) -> None:
        """This repository only, trusting its keys alone (the bootstrap docs/hosting-a-repository.md
        gives)."""
        fmt = ClientFormat.APT if self.fmt == "deb" else ClientFormat.DNF
        [source] = client_config(url, "stable", fmt)
        if self.fmt == "deb":
            self.root.sh(
                "rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*; mkdir -p /usr/share/keyrings"
            )
            self.root.path(keyring.DEB_KEYRING).write_bytes(
                (repo.path / "keys/archive-keyring.gpg").read_bytes()
            )
        else:
            self.root.sh(f"mkdir -p /etc/yum.repos.d {RPM_KEY.rsplit('/', 1)[0]}")
            self.root.write_text(RPM_KEY, repo.export_key())
            if not self.root.rpm_installed(harness.SHIM_NAME):
                self.root.rpm("-i", harness.base_provides_rpm())
        self.root.write_text(source.path, source.text)

    def install_from(self, repo: Repository, url: str, version: str) -> None:
        """A new server of `repo` served at `url`, with mattermost `version` installed."""
        self.configure(repo, url)
        self.refresh()
        self.install(version)

    def refresh(self) -> None:
        if self.fmt == "deb":
            self.root.run("apt-get", "update", "--error-on=any")
        else:
            self.root.run("dnf", "-y", "--refresh", "makecache")

    def install(self, version: str) -> None:
        """mattermost at upstream `version`, revision 1."""
        if self.fmt == "deb":
            self.root.run("apt-get", "install", "-y", *CONF, f"mattermost={version}-1")
        else:
            self.root.run(
                "dnf", "install", "-y", "--setopt=install_weak_deps=False", f"mattermost-{version}-1"
            )

    def reinstall(self) -> None:
        """The installed version again (what a new revision of a release does, too)."""
        if self.fmt == "deb":
            self.root.run("apt-get", "install", "-y", "--reinstall", *CONF, "mattermost")
        else:
            self.root.run("dnf", "reinstall", "-y", "mattermost")

    def finish(self) -> None:
        """What completes a failed upgrade in this format (as the package's message says)."""
        if self.fmt == "deb":
            self.root.run("dpkg", *harness.CONF_OLD, "--configure", "-a")
        else:
            self.root.run("mattermost-pkg", "resume")

    def installed(self) -> str:
        """The installed package's VERSION-RELEASE."""
        if self.fmt == "deb":
            return self.root.run("dpkg-query", "-W", "-f=${Version}", "mattermost").stdout
        return self.root.rpm_query("--qf", "%{VERSION}-%{RELEASE}", "mattermost")
