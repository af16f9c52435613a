"""The real PostgreSQL servers the tests run against (tests/support/pgserver.py): each major is what it
says, on loopback, and takes a login only with its password."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support import harness
from tests.support.pgserver import MAJORS, PgServer


@pytest.mark.parametrize("major", MAJORS)
def test_each_postgresql_is_the_major_asked_for(postgres_of: Callable[[int], PgServer], major: int) -> None:
    server = postgres_of(major)
    assert server.server_version_num() // 10000 == major
    assert postgres_of(major) is server  # one a session
    db = server.new_database()
    assert db.query("SELECT current_user, current_database()") == [f"{db.user}|{db.name}"]
    assert db.query("SHOW password_encryption") == ["scram-sha-256"]
    with pytest.raises(harness.CommandFailed, match="password authentication failed"):
        server.psql("SELECT 1", database=db.name, user=db.user, password="wrong")
