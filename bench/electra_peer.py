"""ELECTRA's discriminator, bertforge beside `transformers`: does it leave its prior?

At minutes of CPU the discriminator predicts "original" for every token (family_compare.py).
That is either the objective at this budget or a defect in bertforge's ELECTRA, so this
trains the same ELECTRA both ways on the same shards for the same steps:

- bertforge: the `electra-small` recipe at `--preset` size through `bertforge pretrain`;
- transformers: `ElectraForMaskedLM` (generator) + `ElectraForPreTraining` (discriminator)
  from the configs bertforge exports, the generator reading the discriminator's embeddings,
  replacements drawn with `torch.multinomial` from the generator's softmax, loss = generator
  MLM + 50 x the discriminator's own loss; batches masked by the same collator (15%, 85% of
  them [MASK], the rest unchanged), AdamW, 10% warmup, linear decay, clipping at 1.0.

Both log the replaced-token loss, accuracy, precision and recall of "replaced" and the
generator's MLM accuracy over the last `--tail` steps, beside the loss of always answering
the replaced share (the prior's entropy).

    .venv/bin/python bench/electra_peer.py --data SHARDS [--steps 600] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from measure import use_threads
from time_to_quality import linear_schedule, peer_adamw, schedule_sets

from bertforge import pretrain
from bertforge.data.collate import PretrainingCollator, Sample
from bertforge.data.shards import ShardedDataset
from bertforge.objectives import MaskingConfig
from bertforge.pretraining.recipe import load_recipe
from bertforge.tokenization import Tokenizer
from bertforge.training.loggers import read_metrics

RECIPE = "electra-small"
KEYS = ("rtd_loss", "rtd_acc", "rtd_precision", "rtd_recall", "rtd_replaced_share", "mlm_acc")


def prior_entropy(share: float) -> float:
    """Binary cross-entropy of always predicting the replaced share itself."""
    return -(share * math.log(share) + (1 - share) * math.log(1 - share))


def summary(rows: list[dict]) -> dict[str, float]:
    out = {k: float(np.mean([r[k] for r in rows])) for k in KEYS}
    out["prior_entropy"] = prior_entropy(out["rtd_replaced_share"])
    return out


def ours(args: argparse.Namespace, work: Path) -> tuple[list[dict], Path]:
    sets = [f"preset={args.preset}", *schedule_sets(args.steps, args.lr, 128, 32, 4)]
    hf = pretrain(args.data, work, load_recipe(RECIPE, [*sets, "train.log_every=10"])).model
    assert hf is not None
    return [r for r in read_metrics(work) if r["split"] == "train"], hf


def peer(args: argparse.Namespace, exported: Path) -> list[dict]:
    """The same ELECTRA written with transformers' classes, from fresh weights."""
    torch.manual_seed(0)
    config = transformers.AutoConfig.from_pretrained
    disc = transformers.ElectraForPreTraining(config(exported / "discriminator")).train()
    gen = transformers.ElectraForMaskedLM(config(exported / "generator")).train()
    gen.electra.embeddings = disc.electra.embeddings  # shared tables, as in the paper
    gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight
    params = list({id(p): p for m in (disc, gen) for p in m.parameters()}.values())
    opt = peer_adamw(params, args.lr)
    schedule = linear_schedule(opt, args.steps)
    train = ShardedDataset(args.data, "train")
    masking = MaskingConfig(mask_prob=0.85, random_prob=0.0)
    tok = Tokenizer.from_pretrained(args.data / "tokenizer")
    collate = PretrainingCollator.from_tokenizer(tok, masking, 1, fields=["mlm_labels"])
    order = np.random.default_rng(0).permutation(len(train))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16)
    rows, sums = [], dict.fromkeys(("loss", "right", "tp", "pred", "repl", "n", "mlm", "m"), 0.0)
    for step in range(args.steps):
        for micro in range(4):  # 4 x 32 = the global batch of 128
            at = (step * 4 + micro) * 32 % len(order)
            b = collate([Sample(int(i), 0, train[int(i)]) for i in order[at : at + 32]])
            labels, mask = b["mlm_labels"], b["attention_mask"]
            with autocast:
                g = gen(input_ids=b["input_ids"], attention_mask=mask, labels=labels)
            picked = labels != -100  # (B, T)
            with torch.no_grad():
                probs = g.logits[picked].float().softmax(-1)  # (M, V)
                sampled = torch.multinomial(probs, 1).squeeze(-1)  # (M,)
            original = torch.where(picked, labels, b["input_ids"])
            corrupted = original.clone()
            corrupted[picked] = sampled
            replaced = (corrupted != original).long()  # (B, T)
            with autocast:
                d = disc(input_ids=corrupted, attention_mask=mask, labels=replaced)
            ((g.loss + 50 * d.loss) / 4).backward()
            real = mask.bool()
            said = (d.logits.detach() > 0)[real]
            truth = replaced[real].bool()
            n = int(real.sum())
            sums["loss"] += d.loss.detach().item() * n
            sums["right"] += int((said == truth).sum())
            sums["tp"] += int((said & truth).sum())
            sums["pred"] += int(said.sum())
            sums["repl"] += int(truth.sum())
            sums["n"] += n
            sums["mlm"] += int((g.logits[picked].argmax(-1) == labels[picked]).sum())
            sums["m"] += int(picked.sum())
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        schedule.step()
        opt.zero_grad(set_to_none=True)
        if (step + 1) % 10 == 0:
            rows.append(
                {
                    "step": step + 1,
                    "rtd_loss": sums["loss"] / sums["n"],
                    "rtd_acc": sums["right"] / sums["n"],
                    "rtd_precision": sums["tp"] / sums["pred"] if sums["pred"] else 0.0,
                    "rtd_recall": sums["tp"] / sums["repl"],
                    "rtd_replaced_share": sums["repl"] / sums["n"],
                    "mlm_acc": sums["mlm"] / sums["m"],
                }
            )
            sums = dict.fromkeys(sums, 0.0)
            if (step + 1) % 100 == 0:
                print("transformers", json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="full-sentences shards")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--preset", default="mini")
    ap.add_argument("--tail", type=int, default=100, help="Steps averaged at the end.")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="electra-peer-"))
    use_threads()
    mine, exported = ours(args, work / "bertforge")
    theirs = peer(args, exported)
    last = args.steps - args.tail
    result = {
        "steps": args.steps,
        "bertforge": summary([r for r in mine if r["step"] > last]),
        "transformers": summary([r for r in theirs if r["step"] > last]),
        "curves": {"bertforge": mine, "transformers": theirs},
    }
    for side in ("bertforge", "transformers"):
        print(side, json.dumps({k: round(v, 4) for k, v in result[side].items()}))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
