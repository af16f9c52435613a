"""Publishing a repository tree where the fleet reads it: an S3 bucket, a directory, an rsync or
SSH mirror. Each generation of the tree is carried in the order that keeps every reader of the
destination on one consistent generation (publishing.py)."""
