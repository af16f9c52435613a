"""`mmpkg sync`: the releases a repository lacks, fetched, built and published, and the channel rules
that say where each goes."""
