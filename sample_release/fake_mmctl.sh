#!/bin/sh
# bin/mmctl of an mmpkg sample release: only `mmctl version` is implemented.
case "$1" in
version)
	printf 'mmctl:\nVersion:\t%s\nBuiltDate:\t%s\nGitCommit:\t%s\nGitTreeState:\tclean\nGoVersion:\tgo1.23.6\nCompiler:\tgc\nPlatform:\tlinux/%s\n' \
		'@@VERSION@@' '@@BUILD_DATE@@' '@@BUILD_HASH@@' '@@ARCH@@'
	;;
*)
	echo "Error: this sample mmctl only knows the 'version' command" >&2
	exit 1
	;;
esac
