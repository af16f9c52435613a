"""What upstream's releases are: version strings, tarball names, the supported upgrade path, and what a
release refuses at start."""
