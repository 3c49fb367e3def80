"""Fine-tunes an instruction synthesizer on `ipt synthesizer data`'s sequences, the loss on the pairs only.

    torchrun --nproc_per_node N -m instruct_pt_trainer.finetune_synthesizer --data tuning.jsonl --init-from BASE_DIR \\
        --steps 1000 --save-pretrained OUT_DIR [--seq-len 4096] [--batch-size 4] [--lr 1e-5] [--held-out 64] [--fsdp]

Each line of --data is {"dataset", "segments": [{"text", "train"}, ...]}. Every segment is tokenized with the base
model's tokenizer (no special tokens added: the texts carry `<s>` and `</s>` themselves, which the tokenizer reads as
its special tokens); tokens of untrained segments (the synthesizer inputs) get the label -100, so only the pairs and
their end of sequence are learned. One sequence per row, cut at --seq-len, rows of a batch padded. DDP (gloo on
CPU, NCCL on GPUs) or FSDP, bf16 autocast on GPUs, AdamW with a linear warm-up. The result is saved with
`save_pretrained` (model and tokenizer), for vLLM, or for `ipt serve-llm` after conversion to GGUF.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time

import torch
import torch.distributed as dist

from .distributed import finish_distributed, init_distributed
from .parallel import parallelize, save_pretrained

IGNORE = -100


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="instruct_pt_trainer.finetune_synthesizer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="tuning sequences (JSONL) from `ipt synthesizer data`")
    p.add_argument("--init-from", required=True, help="the base model: a local transformers directory (model and tokenizer)")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--save-pretrained", default=None, help="save the tuned model and its tokenizer here (transformers' format)")
    p.add_argument("--seq-len", type=int, default=4096)
    p.add_argument("--batch-size", type=int, default=4, help="rows per rank and step")
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--held-out", type=int, default=0, help="sequences kept out of training, to report the held-out loss on the pairs")
    p.add_argument("--eval-every", type=int, default=0, help="report the held-out loss every N steps (0: at the start and the end)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fsdp", action="store_true", help="shard with FSDP2 (fully_shard per decoder layer) instead of DDP; GPUs or CPU")
    return p.parse_args(argv)


def read_sequences(path: str) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                seq = json.loads(line)
                segments = seq["segments"]
                if not isinstance(segments, list) or not all(isinstance(s.get("text"), str) and isinstance(s.get("train"), bool) for s in segments):
                    raise ValueError("segments must be [{\"text\": str, \"train\": bool}, ...]")
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                raise SystemExit(f"{path}:{n}: not a tuning sequence ({err})") from err
            out.append(seq)
    return out


def encode(tokenizer, segments: list[dict], seq_len: int) -> tuple[list[int], list[int]]:
    """Token ids and labels of one sequence: labels are the ids in trained segments, -100 elsewhere; cut at seq_len."""
    ids: list[int] = []
    labels: list[int] = []
    for s in segments:
        t = tokenizer(s["text"], add_special_tokens=False)["input_ids"]
        ids.extend(t)
        labels.extend(t if s["train"] else [IGNORE] * len(t))
    return ids[:seq_len], labels[:seq_len]


def collate(rows: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(r[0]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (x, y) in enumerate(rows):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def masked_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy averaged over the positions whose next token is trained (label != -100)."""
    shift_logits = logits[:, :-1, :].reshape(-1, logits.shape[-1]).float()
    shift_labels = labels[:, 1:].reshape(-1)
    return torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=IGNORE)


@torch.no_grad()
def held_out_loss(model, rows, pad_id: int, batch_size: int, device: torch.device) -> float:
    """The masked loss over held-out rows, weighted by their trained tokens."""
    total, count = 0.0, 0
    model.eval()
    for i in range(0, len(rows), batch_size):
        b = collate(rows[i : i + batch_size], pad_id)
        with autocast(device):
            logits = model(input_ids=b["input_ids"].to(device), attention_mask=b["attention_mask"].to(device)).logits
        n = int((b["labels"][:, 1:] != IGNORE).sum())
        if n:
            total += masked_loss(logits, b["labels"].to(device)).item() * n
            count += n
    model.train()
    return total / max(count, 1)


def autocast(device: torch.device):
    # bf16 on GPUs; on CPU, full precision (the tests' tiny models).
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)


def main(argv: list[str] | None = None) -> int:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    args = parse_args(argv)
    rank, world, device = init_distributed()

    tokenizer = AutoTokenizer.from_pretrained(args.init_from, local_files_only=True)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    sequences = read_sequences(args.data)
    random.Random(args.seed).shuffle(sequences)
    rows = [encode(tokenizer, s["segments"], args.seq_len) for s in sequences]
    rows = [r for r in rows if any(label != IGNORE for label in r[1][1:])]
    held, train = rows[: args.held_out], rows[args.held_out :]
    if not train:
        raise SystemExit(f"{args.data}: no training sequence with trained tokens (after {args.held_out} held out)")
    mine = train[rank::world]

    torch.manual_seed(args.seed)
    base = AutoModelForCausalLM.from_pretrained(args.init_from, local_files_only=True).to(device)
    model = parallelize(base, args.fsdp, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / args.warmup_steps) if args.warmup_steps else 1.0)

    def report(step: int, **fields) -> None:
        if rank == 0:
            print(json.dumps({"step": step, **fields}), flush=True)

    if held:
        report(0, heldOutLoss=round(held_out_loss(model, held, pad_id, args.batch_size, device), 6))
    started = time.time()
    trained_tokens = 0
    order = list(range(len(mine)))
    cursor = len(order)
    rng = random.Random(args.seed + rank)
    for step in range(1, args.steps + 1):
        batch_rows = []
        for _ in range(args.batch_size):
            if cursor >= len(order):
                rng.shuffle(order)
                cursor = 0
            batch_rows.append(mine[order[cursor]])
            cursor += 1
        b = collate(batch_rows, pad_id)
        with autocast(device):
            logits = model(input_ids=b["input_ids"].to(device), attention_mask=b["attention_mask"].to(device)).logits
        loss = masked_loss(logits, b["labels"].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        trained_tokens += int((b["labels"][:, 1:] != IGNORE).sum())
        last = step == args.steps
        if held and ((args.eval_every and step % args.eval_every == 0) or last):
            report(step, loss=round(loss.item(), 6), heldOutLoss=round(held_out_loss(model, held, pad_id, args.batch_size, device), 6))
    elapsed = time.time() - started

    if args.save_pretrained:
        save_pretrained(model, args.save_pretrained, rank)
        if rank == 0:
            tokenizer.save_pretrained(args.save_pretrained)
    totals = torch.tensor([trained_tokens], dtype=torch.long, device=device)
    dist.all_reduce(totals)
    report(args.steps, steps=args.steps, trainedTokens=int(totals.item()), seconds=round(elapsed, 3), trainedTokensPerSecond=round(int(totals.item()) / max(elapsed, 1e-9), 1), ranks=world)
    finish_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
