"""The README's "Schedules, early stopping and sample weights" example
(under "Regularisation and training control") runs as printed and its
controlled network beats the plain one on the test rows."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def section_code() -> str:
    text = README.read_text()
    start = text.index("### Schedules, early stopping and sample weights")
    end = text.index("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], re.S)
    assert blocks, "the section has no Python example"
    return blocks[0]


def test_the_example_beats_the_plain_mlp(capsys):
    scope: dict = {}
    exec(compile(section_code(), "README.md", "exec"), scope)  # noqa: S102 (our own README)
    plain, controlled = scope["test_accuracy"](scope["plain"]), scope["test_accuracy"](scope["net"])
    assert controlled > plain, (controlled, plain)
    out = capsys.readouterr().out
    assert f"plain {plain:.4f}, controlled {controlled:.4f}" in out
    history = scope["history"]
    assert len(history.lr) == len(history.loss) and history.lr[-1] < history.lr[0]
