"""A signed internal apt + dnf repository in one static tree (see repository.py for its layout)."""

from __future__ import annotations

from mmpkg.repo.keys import KeyInfo
from mmpkg.repo.packages import AddResult, Entry
from mmpkg.repo.repository import Repository

__all__ = ["AddResult", "Entry", "KeyInfo", "Repository"]
