"""What the tests share: throw-away roots, servers, repositories, packages."""
