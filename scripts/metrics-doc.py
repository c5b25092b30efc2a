#!/usr/bin/python3
"""Keep README.md's metrics reference equal to `kvmstatd --metrics-reference`.

Usage: metrics-doc.py KVMSTATD [--check]
Without --check the block between the markers is rewritten; with it, a
difference is an error (make lint), so the table never drifts from the
daemon's own HELP table.
"""
import subprocess
import sys

BEGIN = "<!-- metrics-reference: begin (make metrics-doc) -->\n"
END = "<!-- metrics-reference: end -->\n"


def main():
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] != "--check"):
        sys.exit(__doc__)
    table = subprocess.run([sys.argv[1], "--metrics-reference"], check=True,
                           stdout=subprocess.PIPE, text=True).stdout
    with open("README.md", encoding="utf-8") as f:
        readme = f.read()
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        sys.exit("README.md: the metrics-reference markers are missing or repeated")
    head, rest = readme.split(BEGIN)
    _, tail = rest.split(END)
    new = head + BEGIN + table + END + tail
    if new == readme:
        return
    if len(sys.argv) == 3:
        sys.exit("README.md: the metrics reference is out of date: run `make metrics-doc`")
    with open("README.md", "w", encoding="utf-8") as f:
        f.write(new)


if __name__ == "__main__":
    main()
