"""FSDP2 and DDP on two gloo ranks (CPU): the same losses and weights on the same batches; a distributed checkpoint
that resumes to exactly the uninterrupted run; save_pretrained from FSDP2; and the held-out set read from a Megatron
indexed dataset written by megatron-core itself."""
from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

transformers = pytest.importorskip("transformers")

from instruct_pt_trainer import checkpoint  # noqa: E402
from instruct_pt_trainer.distributed import finish_distributed  # noqa: E402
from instruct_pt_trainer.held_out import held_out_loss, held_out_rows, read_indexed  # noqa: E402
from instruct_pt_trainer.parallel import clip_gradients, gradient_sync, parallelize, save_pretrained  # noqa: E402

VOCAB, SEQ, STEPS = 97, 16, 4


def tiny_llama() -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=SEQ, tie_word_embeddings=True)
    return transformers.LlamaForCausalLM(config)


def batch(rank: int, step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 * step + rank)
    return torch.randint(0, VOCAB, (2, SEQ + 1), generator=g)


def train_steps(model, optimizer, first: int, last: int, accum: int = 2) -> list[float]:
    """Optimizer steps first..last-1, each of `accum` batches; returns each step's last batch loss, averaged over ranks."""
    losses = []
    for step in range(first, last):
        for micro in range(accum):
            t = batch(dist.get_rank(), step * accum + micro)
            with gradient_sync(model, micro == accum - 1):
                logits = model(input_ids=t[:, :-1]).logits
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), t[:, 1:].reshape(-1))
                (loss / accum).backward()
        clip_gradients(model, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        losses.append(float(mean) / dist.get_world_size())
    return losses


def worker(rank: int, port: int, out: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank), "WORLD_SIZE": "2"})
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    cpu = torch.device("cpu")
    result: dict = {}
    for name, fsdp in (("ddp", False), ("fsdp", True)):
        model = parallelize(tiny_llama(), fsdp, cpu)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        result[name] = train_steps(model, opt, 0, STEPS)
        save_pretrained(model, os.path.join(out, f"{name}-model"), rank)
    # Interrupted FSDP2 run: checkpoint after step 2, a fresh model and optimizer load it, steps 2..4 again.
    model = parallelize(tiny_llama(), True, cpu)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    train_steps(model, opt, 0, 2)
    path = checkpoint.save(os.path.join(out, "ckpt"), 2, model, opt, [5, 7], {"fsdp": True})
    del model, opt
    model = parallelize(tiny_llama(), True, cpu)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    latest = checkpoint.latest(os.path.join(out, "ckpt"))
    meta = checkpoint.read_meta(latest)
    checkpoint.load(latest, meta, model, opt)
    result["resumed"] = train_steps(model, opt, 2, STEPS)
    result["meta"] = meta
    result["path"] = str(path)
    if rank == 0:
        with open(os.path.join(out, "result.json"), "w") as f:
            json.dump(result, f)
    finish_distributed()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("parallel")
    mp.spawn(worker, args=(free_port(), str(out)), nprocs=2, join=True)
    with open(out / "result.json") as f:
        return out, json.load(f)


def test_fsdp2_trains_as_ddp_does(runs):
    _, r = runs
    assert len(r["fsdp"]) == STEPS
    assert r["fsdp"] == pytest.approx(r["ddp"], abs=1e-4)


def test_save_pretrained_from_fsdp2_equals_ddp(runs):
    out, _ = runs
    a = transformers.LlamaForCausalLM.from_pretrained(out / "ddp-model", local_files_only=True).state_dict()
    b = transformers.LlamaForCausalLM.from_pretrained(out / "fsdp-model", local_files_only=True).state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-4), k


def test_distributed_checkpoint_resumes_exactly(runs):
    out, r = runs
    assert r["resumed"] == r["fsdp"][2:]
    assert r["meta"]["step"] == 2 and r["meta"]["offsets"] == [5, 7]
    files = sorted(p.name for p in (out / "ckpt" / "step-2").iterdir())
    # One file of tensors per rank (no full state on rank 0), DCP's metadata and ours.
    assert files == [".metadata", "__0_0.distcp", "__1_0.distcp", "meta.json"]
    assert not any(p.name.startswith(".step-") for p in (out / "ckpt").iterdir())


def test_held_out_rows_from_a_megatron_dataset(tmp_path):
    indexed = pytest.importorskip("megatron.core.datasets.indexed_dataset")
    import numpy as np

    prefix = str(tmp_path / "held")
    builder = indexed.IndexedDatasetBuilder(prefix + ".bin", dtype=np.uint16)
    docs = [np.arange(40, dtype=np.uint16), np.arange(100, 117, dtype=np.uint16), np.arange(5, dtype=np.uint16)]
    for d in docs:
        builder.add_document(torch.from_numpy(d.astype(np.int64)), [len(d)])
    builder.finalize(prefix + ".idx")
    assert [s.tolist() for s in read_indexed(prefix)] == [d.tolist() for d in docs]
    rows = held_out_rows([prefix], SEQ, limit=10)
    # 40 ids → windows at 0 and 16 (sharing a token, as the sink packs); 17 ids → one; 5 → none.
    assert rows.tolist() == [list(range(0, 17)), list(range(16, 33)), list(range(100, 117))]
    model = tiny_llama()
    loss = held_out_loss(model, rows.remainder(VOCAB), 2, torch.device("cpu"))
    assert 3.0 < loss < 6.0  # about ln(97) for an untrained model
