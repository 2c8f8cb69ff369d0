"""Every ```python block of README.md runs, in order, as a reader would run
them: one namespace for all (a block may use what an earlier one defined),
in a fresh Python process (blocks register components; those must not leak
into this process's registries) and a fresh temporary folder (files a block
writes land there).

Whatever python blocks the README has are run; nothing here lists them.
Two comments, on the line right before a block's opening fence, change that:

- ``<!-- no-test: reason -->`` skips the block (say why: it needs a GPU, a
  cluster, an environment variable set before start-up, ...);
- ``<!-- requires: module, module -->`` runs the block only where those
  modules import (an optional extra); otherwise it is skipped, and so is every
  later block that needs what it defined (give those the same comment).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

from helpers import subprocess_env

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\s*$")
MARK = re.compile(r"^<!--\s*(no-test|requires)\s*:\s*(.*?)\s*-->\s*$")


def python_blocks(text: str) -> list[tuple[int, str, tuple[str, str] | None]]:
    """``(line, code, mark)`` for each python block, ``mark`` the comment before it."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
        if opened.group(1) == "python":
            before = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
            mark = MARK.match(before.strip())
            blocks.append((i + 1, "\n".join(lines[i + 1 : end]), mark.groups() if mark else None))
        i = end + 1
    return blocks


def missing_modules(names: str) -> list[str]:
    return [m for m in (n.strip() for n in names.split(",")) if m and importlib.util.find_spec(m) is None]


def test_the_readme_has_python_blocks_and_marks_parse():
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "README.md has no ```python block"
    for line, _, mark in blocks:
        assert mark is None or mark[1], f"README.md line {line}: a no-test/requires comment needs a reason or modules"


#: Runs the blocks given as JSON ``[[line, code], ...]`` in one namespace;
#: on the first failure prints which block and exits 1.
RUNNER = """
import json, sys, traceback
namespace = {"__name__": "__readme__"}
for line, code in json.load(open(sys.argv[1])):
    try:
        exec(compile(code, f"README.md (block at line {line})", "exec"), namespace)
    except BaseException:
        print(f"README.md, python block at line {line} failed:", file=sys.stderr)
        traceback.print_exc(limit=-4)
        sys.exit(1)
"""


def test_every_python_block_of_the_readme_runs(tmp_path):
    runnable, skipped = [], []
    for line, code, mark in python_blocks(README.read_text(encoding="utf-8")):
        if mark and mark[0] == "no-test":
            skipped.append(f"line {line}: {mark[1]}")
        elif mark and mark[0] == "requires" and missing_modules(mark[1]):
            skipped.append(f"line {line}: needs {', '.join(missing_modules(mark[1]))}")
        else:
            runnable.append((line, code))
    assert runnable, f"no README block can run here ({'; '.join(skipped)})"
    (tmp_path / "blocks.json").write_text(json.dumps(runnable), encoding="utf-8")
    env = subprocess_env()
    env.pop("XPNET_BACKEND", None)
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp_path / "blocks.json")], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
