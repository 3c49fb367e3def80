"""Data parallelism for the package's entry points: DDP, or FSDP2 (`fully_shard`) sharding each decoder layer and then
the whole model. Both run on GPUs (NCCL) and on CPU (gloo), so the sharded path is tested where the tests run."""
from __future__ import annotations

import contextlib

import torch
from torch.nn.parallel import DistributedDataParallel as DDP


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The blocks to shard one by one: the classes transformers names as not to be split (e.g. LlamaDecoderLayer)."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    return [m for m in model.modules() if type(m).__name__ in names]


def parallelize(model: torch.nn.Module, fsdp: bool, device: torch.device) -> torch.nn.Module:
    """DDP around the model, or FSDP2 in place (parameters become DTensors sharded over the ranks). On GPUs FSDP2
    computes in bf16 and reduces gradients in fp32."""
    if not fsdp:
        return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if device.type == "cuda" else MixedPrecisionPolicy()
    for layer in decoder_layers(model):
        fully_shard(layer, mp_policy=mp)
    fully_shard(model, mp_policy=mp)
    return model


def unwrapped(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model (its config, save_pretrained): DDP's inner module; FSDP2 shards in place."""
    return model.module if isinstance(model, DDP) else model


def gradient_sync(model: torch.nn.Module, sync: bool):
    """Whether this backward reduces gradients across ranks (gradient accumulation reduces on the last batch only)."""
    if isinstance(model, DDP):
        return contextlib.nullcontext() if sync else model.no_sync()
    model.set_requires_gradient_sync(sync)  # FSDP2
    return contextlib.nullcontext()


def clip_gradients(model: torch.nn.Module, limit: float) -> float:
    """Clips the gradients' global norm (over every rank's shards under FSDP2) and returns the norm before clipping."""
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), limit)
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    return float(norm)


def full_model_state(model: torch.nn.Module) -> dict:
    """The whole model's state on rank 0, on CPU (a collective: every rank calls it; the others get {})."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def save_pretrained(model: torch.nn.Module, directory: str, rank: int) -> None:
    """The model in transformers' format (config and safetensors), from DDP or FSDP2 alike (collective)."""
    state = full_model_state(model)
    if rank == 0:
        unwrapped(model).save_pretrained(directory, state_dict=state)
