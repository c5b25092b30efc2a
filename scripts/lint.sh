#!/bin/sh
# Static checks run by `make check`: formatting (the checked-in
# .clang-format) and cppcheck on every C file of the project.
set -eu
cd "$(dirname "$0")/.."
files=$(ls daemon/*/*.[ch] util/*.[ch] client/*.[ch] shim/*.[ch] demo/*.c tests/unit/*.[ch] tests/fuzz/*.c bench/*.c tools/*.c 2>/dev/null || true)
echo "lint: clang-format"
# shellcheck disable=SC2086
clang-format --dry-run -Werror $files
echo "lint: cppcheck"
# shellcheck disable=SC2086
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
	--inline-suppr --suppress=missingIncludeSystem -D_GNU_SOURCE -DKVMSTATD_VERSION='"lint"' \
	-Idaemon/common -Idaemon/channel -Idaemon/helper -Idaemon/worker -Idaemon/exposition \
	-Iutil -Iclient -Ishim daemon util client shim demo bench tools
echo "lint: pyflakes (the kvmstat CLI, the asset embedder)"
/usr/bin/python3 -m pyflakes cli/kvmstat scripts/embed-assets.py scripts/docs-screenshots.py
echo "lint: ok"
