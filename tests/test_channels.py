"""Which channels a release goes to (mmpkg/sync/channels.py): the default rules, whose ESR lines are
the upgrade path's, and a rules file's."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmpkg.errors import UsageError
from mmpkg.mattermost.upgrade_path import ESR_LINES
from mmpkg.mattermost.versions import MattermostVersion
from mmpkg.sync.channels import DEFAULT, load_rules

V = MattermostVersion.parse


@pytest.mark.parametrize("line", [line for line, _ in ESR_LINES])
def test_every_esr_line_of_upstreams_goes_to_esr(line: str) -> None:
    assert DEFAULT.channels_for(V(f"{line}.3"), include_rc=False) == ["stable", "esr"]


@pytest.mark.parametrize(
    ("version", "include_rc", "channels"),
    [
        ("7.1.8", False, ["stable", "esr"]),  # an ESR the list once missed
        ("11.7.9", False, ["stable", "esr"]),  # and the newest
        ("10.6.0", False, ["stable"]),
        ("11.7.0-rc1", False, []),
        ("11.7.0-rc1", True, ["rc"]),
    ],
)
def test_default_channels(version: str, include_rc: bool, channels: list[str]) -> None:
    assert DEFAULT.channels_for(V(version), include_rc=include_rc) == channels


def test_rules_can_send_every_release_to_a_first_ring_only(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[channels]\ncanary = "final"\n')
    loaded = load_rules(rules)
    assert loaded.channels_for(V("11.0.0"), include_rc=False) == ["canary"]
    assert loaded.channels_for(V("10.11.1"), include_rc=False) == ["canary"]
    assert loaded.reachable(include_rc=True) == ["canary"]


def test_a_rules_file_replaces_the_esr_lines(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('esr-lines = ["10.6"]\n[channels]\nlts = "esr"\n')
    loaded = load_rules(rules)
    assert loaded.channels_for(V("10.6.1"), include_rc=False) == ["lts"]
    assert loaded.channels_for(V("10.5.2"), include_rc=False) == []
    rules.write_text('esr-lines = ["10"]\n')
    with pytest.raises(UsageError, match=r"is not MAJOR\.MINOR"):
        load_rules(rules)
