#!/usr/bin/env python3
"""check_source_map.py SOURCE_ROOT -- docs/architecture.md's "Source map"
table and the files under src/relayd/ agree.

Every *.c and *.h under src/relayd/ must be listed, by its path relative to
src/relayd (`net/conn.c`), in the first column of the table; a header is
also covered by the row of the .c file of the same name next to it
(`net/conn.h` by `net/conn.c`), while a header on its own (`base/rcu.h`)
needs a row of its own. Every file the table lists must exist, once.

Prints one line per problem and exits 1 if there is any.
"""
import os
import re
import sys

PATH = re.compile(r"`([A-Za-z0-9_./-]+\.[ch])`")


def listed_files(doc):
    with open(doc, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^## Source map\n(.*?)(?=^## )", text, re.S | re.M)
    if m is None:
        sys.exit(f"{doc}: no '## Source map' section")
    rows = []
    for line in m.group(1).splitlines():
        if not line.startswith("|"):
            continue
        first = line.split("|")[1]
        rows.extend(PATH.findall(first))
    if not rows:
        sys.exit(f"{doc}: the Source map section has no table rows naming files")
    return rows


def tree_files(top):
    found = set()
    for d, _, files in os.walk(top):
        for name in files:
            if name.endswith((".c", ".h")):
                found.add(os.path.relpath(os.path.join(d, name), top))
    return found


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    doc = os.path.join(root, "docs", "architecture.md")
    top = os.path.join(root, "src", "relayd")
    rows = listed_files(doc)
    listed = set(rows)
    tree = tree_files(top)
    problems = []
    for path in sorted(p for p in listed if rows.count(p) > 1):
        problems.append(f"{doc}: `{path}` is listed {rows.count(path)} times")
    for path in sorted(listed - tree):
        problems.append(f"{doc}: lists `{path}`, which is not in src/relayd/")
    for path in sorted(tree - listed):
        if path.endswith(".h") and path[:-2] + ".c" in listed:
            continue
        hint = " (or its .c)" if path.endswith(".h") else ""
        problems.append(f"src/relayd/{path}: not in {doc}'s Source map{hint}")
    for p in problems:
        print(p)
    print(f"{len(tree)} files under src/relayd, {len(listed)} listed, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
