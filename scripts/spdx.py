#!/usr/bin/env python3
"""The licence line of every source file: 'SPDX-License-Identifier: BSL-1.0' in one of its first
three lines, in the comment syntax of the file (after a #! line). Files without comments (JSON,
fuzz corpora, benchmark results, the licence itself) are left out.
  python3 scripts/spdx.py --check   lists the files without it; exit 1 if any (ctest spdx)
  python3 scripts/spdx.py --add     adds it where it is missing
Run from anywhere; works on the files git tracks, or on the tree when it is not a git checkout."""
import os, subprocess, sys

TAG = "SPDX-License-Identifier: BSL-1.0"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMENT = {".hpp": "//", ".cpp": "//", ".h": "//", ".cmake": "#", ".sh": "#", ".py": "#",
           ".gp": "#", ".lua": "--", ".in": "#", ".supp": "#", ".dict": "#", ".md": "<!--",
           ".html": "<!--", ".js": "//", ".mjs": "//", ".css": "/*"}
SKIP_DIRS = ("test/fuzz/corpus/", "bench/results/")

def comment_of(path):
    base = os.path.basename(path)
    if base in ("CMakeLists.txt", ".gitignore") or path == ".ci/run":
        return "#"
    if path.startswith(SKIP_DIRS):
        return None
    return COMMENT.get(os.path.splitext(base)[1])

def files():
    try:
        out = subprocess.run(["git", "-C", ROOT, "ls-files"], capture_output=True, text=True,
                             check=True).stdout
        return out.split("\n")
    except (OSError, subprocess.CalledProcessError):
        found = []
        for d, dirs, names in os.walk(ROOT):
            dirs[:] = [x for x in dirs if x != ".git" and not x.startswith("build")]
            found += [os.path.relpath(os.path.join(d, n), ROOT) for n in names]
        return found

def main():
    add = "--add" in sys.argv
    missing = []
    for path in filter(None, files()):
        style = comment_of(path)
        full = os.path.join(ROOT, path)
        if style is None or not os.path.isfile(full):
            continue
        with open(full, encoding="utf-8") as f:
            text = f.read()
        if TAG in "\n".join(text.split("\n")[:3]):
            continue
        missing.append(path)
        if add:
            closing = {"<!--": " -->", "/*": " */"}.get(style, "")
            line = f"{style} {TAG}{closing}"
            lines = text.split("\n")
            lines.insert(1 if lines[0].startswith("#!") else 0, line)
            with open(full, "w", encoding="utf-8") as f:
                f.write("\n".join(lines))
    if add:
        print(f"spdx: added to {len(missing)} files")
        return 0
    for path in missing:
        print(f"{path}: no '{TAG}' in its first three lines")
    print(f"spdx: {len(missing)} files without the licence line")
    return 1 if missing else 0

sys.exit(main())
