"""The README's Python examples run as written: the pretrain -> finetune -> predict pipeline
(scaled down: 2 steps, 32 examples) and the model/tokenizer calls on the packaged MiniLM."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import transformers

REPO = Path(__file__).resolve().parents[2]


def examples() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", readme, flags=re.S)


def test_pipeline_example(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydoc_data.topics import topics

    pipeline = examples()[0]
    for full, small in (
        ("max_steps=2000", "max_steps=2"),
        ("epochs=3)", "epochs=1, max_train_examples=32, max_eval_examples=32)"),
    ):
        assert full in pipeline, full
        pipeline = pipeline.replace(full, small)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(topics.values()), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    scope = {"corpus": corpus, "glue_sst2": shared_data / "glue" / "SST-2"}
    exec(compile(pipeline, "README.md", "exec"), scope)
    assert scope["run"].step == 2 and (tmp_path / "runs" / "mini" / "hf").is_dir()
    assert set(scope["ft"].metrics) == {"accuracy", "precision"}
    assert [r["label"] in ("0", "1") for r in scope["preds"]] == [True, True]


def test_models_and_tokenizers_example(minilm_path: Path, tmp_path: Path) -> None:
    code = examples()[1]
    scope = {"path": minilm_path, "path2": tmp_path / "saved"}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["out"].last_hidden_state.shape[:2] == scope["batch"]["input_ids"].shape
    transformers.AutoModel.from_pretrained(tmp_path / "saved")  # as the comment promises
