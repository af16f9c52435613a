"""The build: a release tarball read, checked and turned into one model, staged once, and packaged by the
backends (mmpkg/backends/) into --out."""
