"""A signed internal apt + dnf repository in one static tree (see repository.py for its layout)."""

from __future__ import annotations

from mmpkg.repo.repository import AddResult, Entry, Repository

__all__ = ["AddResult", "Entry", "Repository"]
