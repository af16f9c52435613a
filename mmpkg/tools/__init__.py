"""Running native tools: the one way a program is started and stopped, and throw-away GnuPG homes."""
