"""The README's Python example runs as written (on the packaged MiniLM)."""

from __future__ import annotations

import re
from pathlib import Path

import transformers

REPO = Path(__file__).resolve().parents[2]


def test_python_api_example(minilm_path: Path, tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    scope = {"path": minilm_path, "path2": tmp_path / "saved"}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["out"].last_hidden_state.shape[:2] == scope["batch"]["input_ids"].shape
    transformers.AutoModel.from_pretrained(tmp_path / "saved")  # as the comment promises
