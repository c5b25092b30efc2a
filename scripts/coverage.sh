#!/bin/sh
# Line coverage of one source folder by the unit tests (make coverage):
# gcov over the objects of a --coverage build whose tests have run.
#   scripts/coverage.sh BUILD_DIR SOURCE_DIR
# One line per file (lines gcov counts as code, lines run) and the total;
# a file no test runs (main.c, the event loop) counts with 0 lines run.
set -eu
cd "$(dirname "$0")/.."
build=$1
src=$2
sum=$(mktemp)
trap 'rm -f "$sum"' EXIT
printf '%-36s %7s %7s %7s\n' file lines run cover
for f in "$src"/*.c; do
	# the block of the file itself: gcov also reports the inline headers
	gcov -n -o "$build/$src" "$f" 2>/dev/null |
		awk -v want="$f" '/^File /{ cur = $2; gsub(/\x27/, "", cur) }
			/^Lines executed:/ && cur == want {
				split($2, a, ":"); pct = a[2]; sub(/%/, "", pct)
				printf "%s %d %d\n", want, $4, int(pct * $4 / 100 + 0.5); exit }' >>"$sum"
done
awk '{ printf "%-36s %7d %7d %6.1f%%\n", $1, $2, $3, $2 ? 100 * $3 / $2 : 0; n += $2; r += $3 }
	END { printf "%-36s %7d %7d %6.1f%%\n", "total", n, r, n ? 100 * r / n : 0 }' "$sum"
