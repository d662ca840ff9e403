#!/usr/bin/env python3
# SPDX-License-Identifier: BSL-1.0
"""Checks that the documentation's excerpts are still true: every block fenced
```cpp excerpt=PATH in README.md and docs/*.md must match the file PATH (relative to the
repository root): its lines, except `...` lines (what the excerpt leaves out), appear in PATH
in the same order, compared without leading and trailing blanks.
Usage: docs_excerpts.py REPO_ROOT   (ctest docs_excerpts)."""
import glob, os, re, sys

root = sys.argv[1]
docs = [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md")))
fence = re.compile(r"^```cpp excerpt=(\S+)\s*$")
failures = checked = 0
for doc in docs:
    lines = open(doc, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = fence.match(lines[i])
        if not m:
            i += 1
            continue
        start, path = i + 1, m.group(1)
        end = start
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        where = f"{os.path.relpath(doc, root)}:{start + 1}"
        source = os.path.join(root, path)
        if end == len(lines):
            print(f"{where}: excerpt without its closing fence"); failures += 1; break
        if not os.path.isfile(source):
            print(f"{where}: excerpt of {path}, which does not exist"); failures += 1
        else:
            have = [l.strip() for l in open(source, encoding="utf-8").read().split("\n")]
            at = 0
            for n in range(start, end):
                want = lines[n].strip()
                if want in ("", "..."):
                    continue
                try:
                    at = have.index(want, at) + 1
                except ValueError:
                    print(f"{os.path.relpath(doc, root)}:{n + 1}: not in {path} "
                          f"(at or after its line {at + 1}): {want}")
                    failures += 1
                    break
        checked += 1
        i = end + 1
print(f"docs_excerpts: {checked} excerpts checked, {failures} failing")
sys.exit(1 if failures or checked == 0 else 0)
