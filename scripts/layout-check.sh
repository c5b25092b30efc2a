#!/bin/sh
# make layout-check: each folder of the daemon compiles with only the
# include paths it may use (Makefile, INC_<folder>). Prove that the walls
# stand: every forbidden include below must fail to build with "No such
# file", and every allowed one must build, so that a failure of the first
# kind is the wall and not a broken probe.
#
#   scripts/layout-check.sh CC "CFLAGS" then FOLDER:HEADER:yes|no ...
# with INC_<FOLDER> in the environment (the Makefile exports them).
set -eu
cc=$1
cflags=$2
shift 2
fail=0
n=0
for probe in "$@"; do
	folder=${probe%%:*}
	rest=${probe#*:}
	header=${rest%%:*}
	want=${rest#*:}
	eval "inc=\${INC_$folder-}"
	[ -n "$inc" ] || { echo "layout-check: no INC_$folder" >&2; exit 1; }
	# shellcheck disable=SC2086
	out=$(printf '#include "%s"\n' "$header" |
		$cc $cflags $inc -fsyntax-only -x c - 2>&1) && got=yes || got=no
	n=$((n + 1))
	if [ "$got" != "$want" ]; then
		fail=1
		if [ "$want" = yes ]; then
			echo "layout-check: $folder/ may include $header, but it does not build:" >&2
			echo "$out" | head -n 5 >&2
		else
			echo "layout-check: $folder/ must not reach $header, but it builds" >&2
		fi
	elif [ "$got" = no ] && ! printf '%s' "$out" | grep -q 'No such file'; then
		fail=1
		echo "layout-check: $folder/ -> $header failed for another reason:" >&2
		echo "$out" | head -n 5 >&2
	fi
done
[ "$fail" = 0 ] || exit 1
echo "  layout-check: $n probes: every forbidden include fails, every allowed one builds"
