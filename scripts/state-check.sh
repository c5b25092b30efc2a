#!/bin/sh
# make state-check: no hidden state in the worker's and the exposition's
# code. Every object they define in a writable section (.data, .bss; not
# .data.rel.ro, where tables of constant pointers live) is mutable state
# at file scope or function-static; such state belongs in a context its
# owner passes in. A module that really needs one names it here, with the
# reason, as FILE.o:SYMBOL in ALLOWED.
#
#   scripts/state-check.sh OBJECT...
set -eu
ALLOWED=""
fail=0
for obj in "$@"; do
	base=$(basename "$obj")
	# objdump -t: ADDR FLAGS... SECTION SIZE NAME; objects are flagged O
	found=$(objdump -t "$obj" | awk '$3 == "O" && $4 ~ /^\.(data|bss)/ && $4 !~ /rel\.ro/ { print $NF }')
	for sym in $found; do
		case " $ALLOWED " in
		*" $base:$sym "*) continue ;;
		esac
		echo "state-check: $obj: mutable static object \"$sym\": pass it in a context instead" >&2
		fail=1
	done
done
[ "$fail" = 0 ] && echo "  state-check: $# objects, no mutable file-scope or function-static state"
exit "$fail"
