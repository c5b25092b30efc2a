#!/usr/bin/python3
"""Import cycles between the daemon's source files (make cycles).

A file "imports" another when its object file uses a symbol the other
defines (nm: U against T/D/B/R). Prints every cycle (a strongly connected
component of more than one file) with the edges inside it, and exits 1 if
there is any. A module calls down, never back up: the caller passes what
the callee needs, and the event loop does the effects.

    scripts/import-cycles.py build/daemon/*/*.o build/util/*.o
"""
import os
import subprocess
import sys


def symbols(obj):
    defined, used = set(), set()
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBR":
            defined.add(parts[2])
    return defined, used


def cycles(graph):
    """Tarjan's strongly connected components of more than one node."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main(objs):
    table = {o: symbols(o) for o in objs}
    owner = {s: o for o, (defined, _) in table.items() for s in defined}
    graph = {o: sorted({owner[s] for s in used if s in owner and owner[s] != o})
             for o, (_, used) in table.items()}
    name = lambda o: os.path.normpath(o).split(os.sep, 1)[-1].replace(".o", ".c")
    found = cycles(graph)
    for comp in found:
        print("cycle: " + " <-> ".join(name(o) for o in comp))
        for o in comp:
            print("    %s -> %s" % (name(o), ", ".join(name(w) for w in graph[o] if w in comp)))
    print("import cycles: %d among %d files" % (len(found), len(objs)))
    return 1 if found else 0


if __name__ == "__main__":
    sys.setrecursionlimit(10000)
    sys.exit(main(sys.argv[1:]))
