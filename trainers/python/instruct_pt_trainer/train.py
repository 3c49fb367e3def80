"""Decoder-only pre-training on instruct-pt's token batches, one data-parallel rank per process (torchrun).

    torchrun --nproc_per_node N -m instruct_pt_trainer.train --brokers HOST:9092 --registry http://HOST:8081 \\
        --topic ipt.train.tokens --run-id RUN --steps 1000 --checkpoint-dir ckpt [--resume] [--init-from DIR]

Rank r reads partition r of the token topic; with --grad-accum N, its batches kN … kN + N − 1 make its step k + 1.
DDP, or FSDP2 with --fsdp. Checkpoints (torch.distributed.checkpoint) hold the model, the optimizer, the step and every
rank's next offset, so --resume continues with exactly the next batch. Warm-up and cosine learning rate, gradient
clipping, bf16 on GPUs; per-step metrics as JSON lines and to ClickHouse; a periodic held-out loss.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

from . import checkpoint
from .dataset import TokenBatchStream
from .distributed import finish_distributed, init_distributed
from .held_out import held_out_loss, held_out_rows
from .parallel import clip_gradients, gradient_sync, parallelize, save_pretrained
from .step_metrics import ClickHouseSteps


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="instruct_pt_trainer.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--brokers", default=os.environ.get("IPT_KAFKA_BROKERS", "127.0.0.1:9092"))
    p.add_argument("--registry", default=os.environ.get("IPT_REGISTRY_URL", "http://127.0.0.1:8081"))
    p.add_argument("--topic", default="ipt.train.tokens")
    p.add_argument("--run-id", default=None, help="train on this run's batches only")
    p.add_argument("--steps", type=int, required=True, help="train until this step (counted from the start, also on resume)")
    p.add_argument("--checkpoint-dir", required=True)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --checkpoint-dir")
    p.add_argument("--init-from", default=None, help="continual pre-training: a local transformers checkpoint directory")
    p.add_argument("--save-pretrained", default=None, help="at the end, save the model in transformers' format here (for --init-from)")
    p.add_argument("--hidden-size", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-4, help="peak learning rate")
    p.add_argument("--warmup-steps", type=int, default=0, help="linear warm-up to --lr over this many steps")
    p.add_argument("--lr-schedule", choices=["cosine", "constant"], default="cosine", help="after the warm-up: cosine down to --min-lr-ratio × --lr at --steps, or constant")
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0, help="clip the gradients' global norm to this (0: no clipping)")
    p.add_argument("--grad-accum", type=int, default=1, help="batches per optimizer step (the log's step is the optimizer step)")
    p.add_argument("--metrics-every", type=int, default=10, help="print a JSON line of metrics (loss, lr, grad norm, tokens/s, MFU) every N steps")
    p.add_argument("--peak-tflops", type=float, default=None, help="the accelerator's peak TFLOP/s per rank, for MFU (default: 989 on H100/H200 in bf16, else no MFU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fsdp", action="store_true", help="shard with FSDP2 (fully_shard per decoder layer) instead of DDP; GPUs or CPU")
    p.add_argument("--held-out", action="append", default=[], metavar="PREFIX", help="a held-out domain set: a Megatron indexed dataset's path prefix (ipt shards writes them); repeatable")
    p.add_argument("--held-out-rows", type=int, default=64, help="rows of seq_len + 1 tokens taken from --held-out")
    p.add_argument("--eval-every", type=int, default=100, help="held-out loss every N steps (and at the last)")
    p.add_argument("--clickhouse-url", default=os.environ.get("IPT_CLICKHOUSE_URL"), help="write the metrics lines to ClickHouse's trainer_steps (default IPT_CLICKHOUSE_URL; unset: not written)")
    p.add_argument("--clickhouse-db", default=os.environ.get("IPT_CLICKHOUSE_DB", "instruct_pt"))
    p.add_argument("--job", default="train", help="this training job's name in ClickHouse (several jobs may train on one run)")
    p.add_argument("--log-file", default=None, help="append one JSON line per rank and step (offset, loss)")
    p.add_argument("--idle-timeout-s", type=float, default=60.0)
    p.add_argument("--exit-after-step", type=int, default=None, help="exit abruptly after this step (fault drills)")
    return p.parse_args(argv)


def build_model(args: argparse.Namespace, vocab_size: int, seq_len: int) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    if args.init_from:
        model = AutoModelForCausalLM.from_pretrained(args.init_from, local_files_only=True)
        if model.config.vocab_size < vocab_size:
            raise SystemExit(f"--init-from {args.init_from}: its vocabulary ({model.config.vocab_size}) is smaller than the batches' tokenizer's ({vocab_size})")
        return model
    torch.manual_seed(args.seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=args.hidden_size,
        intermediate_size=args.hidden_size * 4,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,
        max_position_embeddings=seq_len,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def learning_rate(args: argparse.Namespace, step: int) -> float:
    """The learning rate of optimizer step `step` (0-based): a function of the step alone, so a resumed run follows it exactly."""
    if args.warmup_steps and step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    if args.lr_schedule == "constant":
        return args.lr
    span = max(1, args.steps - args.warmup_steps)
    progress = min(1.0, (step - args.warmup_steps) / span)
    floor = args.lr * args.min_lr_ratio
    return floor + (args.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def flops_per_token(model: torch.nn.Module, seq_len: int) -> float:
    """Training FLOPs per token: 6 per parameter (forward and backward) plus attention's 12 · layers · hidden · seq_len."""
    config = model.config
    params = sum(p.numel() for p in model.parameters())
    return 6.0 * params + 12.0 * config.num_hidden_layers * config.hidden_size * seq_len


def peak_flops(args: argparse.Namespace, device: torch.device) -> float | None:
    if args.peak_tflops:
        return args.peak_tflops * 1e12
    if device.type == "cuda" and any(n in torch.cuda.get_device_name(device) for n in ("H100", "H200")):
        return 989e12  # dense bf16
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rank, world, device = init_distributed()

    meta = None
    start_step = 0
    offsets = [0] * world
    resume_from = None
    if args.resume:
        resume_from = checkpoint.latest(args.checkpoint_dir)
        if resume_from is None:
            raise SystemExit(f"--resume: no checkpoint in {args.checkpoint_dir}")
        meta = checkpoint.read_meta(resume_from)
        if len(meta["offsets"]) != world:
            raise SystemExit(f"checkpoint {resume_from} was written by {len(meta['offsets'])} ranks; this run has {world}")
        start_step, offsets = meta["step"], list(meta["offsets"])

    stream = iter(TokenBatchStream(args.brokers, args.registry, args.topic, rank, offsets[rank], args.run_id, args.idle_timeout_s))
    log = open(args.log_file, "a", encoding="utf-8") if args.log_file else None
    sink = ClickHouseSteps(args.clickhouse_url, args.clickhouse_db, args.run_id or "", args.job, os.environ.get("IPT_CLICKHOUSE_USERNAME"), os.environ.get("IPT_CLICKHOUSE_PASSWORD")) if args.clickhouse_url and rank == 0 else None
    model = optimizer = held = None
    fpt = 0.0
    peak = peak_flops(args, device)
    step = start_step
    started = step_started = time.time()
    tokens_seen = step_tokens = 0
    micro = 0
    while step < args.steps:
        try:
            offset, batch = next(stream)
            have = 1
        except StopIteration:
            have = 0
        # Every rank must take the step or none: a rank without a batch would leave the others in a collective.
        flag = torch.tensor([have], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        if flag.item() == 0:
            if have == 0:
                print(f"rank {rank}: no batch within {args.idle_timeout_s}s at step {step}; stopping", file=sys.stderr)
            break
        if model is None:
            seq_len = batch["input_ids"].shape[1]
            base = build_model(args, batch["vocab_size"], seq_len).to(device)
            fpt = flops_per_token(base, seq_len)
            model = parallelize(base, args.fsdp, device)
            optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
            if resume_from is not None:
                checkpoint.load(resume_from, meta, model, optimizer)
            if args.held_out:
                # Every rank reads the set; all stop together when one cannot (a rank alone would leave the others
                # waiting in a collective).
                problem = None
                try:
                    held = held_out_rows(args.held_out, seq_len, args.held_out_rows)
                except (OSError, SystemExit) as err:
                    problem = str(err)
                ok = torch.tensor([0 if problem else 1], device=device)
                dist.all_reduce(ok, op=dist.ReduceOp.MIN)
                if ok.item() == 0:
                    raise SystemExit(f"--held-out: {problem or 'another rank could not read the held-out set'}")
        x = batch["input_ids"].to(device)
        y = batch["labels"].to(device)
        micro += 1
        last_micro = micro == args.grad_accum
        # Gradients are reduced across ranks once per optimizer step, on its last batch.
        with gradient_sync(model, last_micro):
            with torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext():
                logits = model(input_ids=x).logits
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
            (loss / args.grad_accum).backward()
        tokens_seen += y.numel()
        step_tokens += y.numel()
        offsets[rank] = offset + 1
        if log:
            log.write(json.dumps({"rank": rank, "step": step + 1, "offset": offset, "globalStep": batch["global_step"], "loss": round(loss.item(), 6)}) + "\n")
            log.flush()
        if not last_micro:
            continue
        micro = 0
        lr = learning_rate(args, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        grad_norm = clip_gradients(model, args.grad_clip if args.grad_clip > 0 else float("inf"))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        evaluate = held is not None and ((args.eval_every and step % args.eval_every == 0) or step == args.steps)
        held_loss = held_out_loss(model, held, x.shape[0], device) if evaluate else None
        if args.metrics_every and (step % args.metrics_every == 0 or step == args.steps or evaluate):
            now = time.time()
            rate = world * step_tokens / max(now - step_started, 1e-9)
            if rank == 0:
                m = {"step": step, "loss": round(loss.item(), 6), "lr": lr, "gradNorm": round(grad_norm, 6), "tokensPerSecond": round(rate, 1),
                     "mfu": None if peak is None else round(rate * fpt / (world * peak), 4), "ranks": world, "tokens": world * tokens_seen}
                if held_loss is not None:
                    m["heldOutLoss"] = round(held_loss, 6)
                print(json.dumps(m), flush=True)
                if sink:
                    sink.write(int(now * 1000), m)
            step_started, step_tokens = now, 0
        if step % args.checkpoint_every == 0 or step == args.steps:
            gathered: list[int] = [None] * world  # type: ignore[list-item]
            dist.all_gather_object(gathered, offsets[rank])
            all_offsets = [int(o) for o in gathered]
            path = checkpoint.save(args.checkpoint_dir, step, model, optimizer, all_offsets, {"topic": args.topic, "run": args.run_id, "world": world, "fsdp": args.fsdp})
            if rank == 0:
                print(f"checkpoint {path} (offsets {all_offsets})", file=sys.stderr)
        if args.exit_after_step is not None and step >= args.exit_after_step:
            if log:
                log.close()
            os._exit(3)
    elapsed = time.time() - started
    if args.save_pretrained and model is not None:
        save_pretrained(model, args.save_pretrained, rank)
    if rank == 0:
        summary = {"steps": step - start_step, "tokensPerRank": tokens_seen, "seconds": round(elapsed, 3), "tokensPerSecond": round(world * tokens_seen / max(elapsed, 1e-9), 1)}
        if sink:
            sink.close()
            summary["clickhouseRows"] = {"written": sink.written, "failed": sink.failed, "dropped": sink.dropped}
        print(json.dumps(summary))
    if log:
        log.close()
    finish_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
