"""ONNX export of a checkpoint for one serving task, and an onnxruntime session to run it.

Every graph takes `input_ids`, `attention_mask` and `token_type_ids` (int64, (batch,
sequence), both axes dynamic) and returns, by task (`--task`: embed, fill-mask, or any
fine-tuning task of `bertforge.tasks`, whose task head picks the graph):

    embed                           sentence_embedding        (B, H)   mean or CLS pooled,
                                                                       optionally L2-normalised
    fill-mask                       logits                    (B, T, V)
    classify, sst2, ... (sequence)  logits                    (B, C)
    ner (token)                     logits                    (B, T, C)
    squad, qa, cmrc (spans)         start_logits, end_logits  (B, T) each

The graph runs the padded path (no unpadding, no range checks: both depend on the values of
the inputs, which a graph cannot branch on) and is checked against PyTorch on a padded sample
batch before it replaces FILE.onnx, so a file that exists is a verified one. The default
opset 18 runs anywhere; `opset=23` turns attention into ONNX's `Attention` op, which
onnxruntime runs about 10% faster on CPU.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bertforge.architectures import TASK_MODELS, PreTrainingModel
from bertforge.atomic import atomic_path
from bertforge.errors import ConfigError, DataError
from bertforge.inference import POOLINGS, pool
from bertforge.interop.sentence_transformers import Pooling, read_pooling
from bertforge.models import Encoder
from bertforge.models.encoder import encoder_config
from bertforge.tasks import all_tasks, get_task

log = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Graph outputs by serving task or task head kind (multiple choice's (B, C, T) inputs have
# no graph yet).
OUTPUTS = {
    "embed": ("sentence_embedding",),
    "fill-mask": ("logits",),
    "sequence_classification": ("logits",),
    "token_classification": ("logits",),
    "question_answering": ("start_logits", "end_logits"),
}
SERVING = ("embed", "fill-mask")
OPSET = 18
TOLERANCE = 1e-4  # max |onnxruntime - PyTorch| accepted at export (fp32)


class _Embedding(nn.Module):
    def __init__(self, encoder: Encoder, pooling: str, normalize: bool) -> None:
        super().__init__()
        self.encoder, self.pooling, self.normalize = encoder, pooling, normalize

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:  # (B, H)
        hidden = self.encoder(input_ids, attention_mask, token_type_ids).last_hidden_state
        vectors = pool(hidden, attention_mask, self.pooling)
        return F.normalize(vectors, dim=-1) if self.normalize else vectors


class _FillMask(nn.Module):
    def __init__(self, model: PreTrainingModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:  # (B, T, V)
        return self.model(input_ids, attention_mask, token_type_ids).mlm_logits


def graph_kind(task: str) -> str:
    """A serving task's own name, or the task head kind of a fine-tuning task."""
    if task in SERVING:
        return task
    try:
        kind = get_task(task).head
    except ConfigError:
        kind = None
    if kind not in OUTPUTS:
        raise ConfigError(
            f"--task {task!r}; choose one of {', '.join(SERVING)}, or a fine-tuning task with a "
            f"sequence, token or span head ({', '.join(graph_tasks())})"
        )
    return kind


def graph_tasks() -> list[str]:
    """The fine-tuning tasks that have a graph."""
    return [t.name for t in all_tasks() if t.head in OUTPUTS]


def task_graph(
    task: str, model_dir: Path, pooling: str = "mean", normalize: bool = False
) -> nn.Module:
    """The module whose forward is the task's graph: (ids, mask, types) -> its outputs."""
    kind = graph_kind(task)
    if pooling not in POOLINGS:
        raise ConfigError(f"--pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    if kind == "embed":
        graph: nn.Module = _Embedding(Encoder.from_pretrained(model_dir), pooling, normalize)
    elif kind == "fill-mask":
        graph = _FillMask(PreTrainingModel.from_pretrained(model_dir))
    else:
        graph = TASK_MODELS[kind].from_pretrained(model_dir)
    for module in graph.modules():
        if isinstance(module, Encoder):
            module.check_inputs = False  # a graph cannot raise on values; the caller checks ids
            module.unpad = False
    return graph.eval()


def sample_inputs(vocab_size: int, batch: int = 2, length: int = 12) -> dict[str, torch.Tensor]:
    """A padded batch: the second row is shorter, so the mask is exercised."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab_size, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1:, length // 2 :] = 0
    types = torch.zeros(batch, length, dtype=torch.long)
    types[:, length // 3 :] = 1
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": types * mask}


def export_onnx(
    model_dir: Path,
    task: str,
    output: Path,
    *,
    pooling: str | None = None,
    normalize: bool | None = None,
    opset: int = OPSET,
) -> Path:
    """Export MODEL_DIR's TASK graph to OUTPUT (one self-contained .onnx file, written
    atomically after an onnxruntime check on a padded batch). Returns OUTPUT. An embed
    graph pools as the checkpoint's sentence-transformers modules say, unless `pooling` /
    `normalize` are given (default: mean, unnormalised)."""
    onnx, _ = _require_onnx()
    how = (read_pooling(model_dir) or Pooling()).override(pooling, normalize, None)
    graph = task_graph(task, model_dir, how.mode, how.normalize)
    config = encoder_config(graph)
    inputs = sample_inputs(config.vocab_size)
    if config.type_vocab_size < 2:  # RoBERTa: one segment; DistilBERT: none
        inputs["token_type_ids"].zero_()
    output.parent.mkdir(parents=True, exist_ok=True)
    _remove_partial(output)
    try:
        _export(graph, task, inputs, output, opset, config.max_length, onnx)
    except OSError as e:  # disk full, a file size limit; atomic_path removed the partial file
        raise DataError(
            f"could not write '{output}': {e.strerror or e}; free space and export again"
        ) from None
    log.info("exported %s (%s) to %s", model_dir, task, output)
    return output


def _export(
    graph: nn.Module,
    task: str,
    inputs: dict[str, torch.Tensor],
    output: Path,
    opset: int,
    max_length: int,
    onnx: Any,
) -> None:
    batch = torch.export.Dim("batch", min=1)
    length = torch.export.Dim("sequence", min=2, max=max_length)
    dims = {name: {0: batch, 1: length} for name in INPUTS}
    with atomic_path(output) as tmp, warnings.catch_warnings(), _quiet("torch.onnx"):
        warnings.simplefilter("ignore")  # the exporter's deprecation chatter
        program = torch.onnx.export(
            graph,
            tuple(inputs[name] for name in INPUTS),
            dynamo=True,
            dynamic_shapes=tuple(dims[name] for name in INPUTS),
            input_names=list(INPUTS),
            output_names=list(OUTPUTS[graph_kind(task)]),
            opset_version=opset,
            verbose=False,
        )
        program.save(str(tmp), external_data=False)
        onnx.checker.check_model(str(tmp))
        _verify(tmp, graph, task, inputs)


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Logger `name` at ERROR for the block (the exporter warns about every op library it
    does not find, e.g. torchvision's)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _remove_partial(output: Path) -> None:
    """Temporary files an interrupted export (killed before its rename) left beside OUTPUT."""
    stale = list(output.parent.glob(f".{output.name}.*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log.warning("removed %d partial file(s) of an interrupted export of %s", len(stale), output)


def _verify(path: Path, graph: nn.Module, task: str, inputs: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        expected = graph(*(inputs[name] for name in INPUTS))
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = OnnxModel(path)({k: v.numpy() for k, v in inputs.items()})
    for name, want in zip(OUTPUTS[graph_kind(task)], expected, strict=True):
        gap = float(np.abs(got[name] - want.numpy()).max())
        if gap > TOLERANCE:
            raise DataError(
                f"the exported {task} graph disagrees with PyTorch: max |diff| {gap:.2e} on "
                f"'{name}' (tolerance {TOLERANCE}); nothing was written"
            )


class OnnxModel:
    """An onnxruntime session on an exported graph: numpy inputs by name -> outputs by name."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        _, ort = _require_onnx()
        if not Path(path).is_file():
            raise DataError(f"'{path}' does not exist; export it with `bertforge export onnx`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own types for a bad file
            raise DataError(f"'{path}' is not a loadable ONNX model ({e})") from None
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {name: np.asarray(batch[name], dtype=np.int64) for name in self.inputs}
        return dict(zip(self.outputs, self.session.run(self.outputs, feed), strict=True))


def _require_onnx() -> tuple[Any, Any]:
    """(onnx, onnxruntime), or a clear error naming the extra to install."""
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise ConfigError(
            "ONNX export and inference need the onnx extra: pip install 'bertforge[onnx]' "
            "(onnx, onnxscript, onnxruntime)"
        ) from None
    onnxruntime.set_default_logger_severity(3)  # errors only
    return onnx, onnxruntime
