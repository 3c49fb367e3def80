"""Checkpoints with torch.distributed.checkpoint: every rank writes its own part of the model and optimizer (under
FSDP2 its shards; no full state is gathered on one rank), then rank 0 writes meta.json — the step and every rank's
next offset in the token topic — and renames the directory into place. A step-N directory is whole once it has its
meta.json. The directory must be one file system for all ranks (shared across machines)."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
import torch.distributed as dist

META = "meta.json"
PATTERN = re.compile(r"^step-(\d+)$")
# A full state saved with torch.save by rank 0 (earlier versions of this package); still read, with DDP.
LEGACY = re.compile(r"^step-(\d+)\.pt$")


def latest(directory: str) -> Path | None:
    d = Path(directory)
    if not d.is_dir():
        return None
    found = []
    for p in d.iterdir():
        if (m := PATTERN.match(p.name)) and (p / META).is_file():
            found.append((int(m.group(1)), 1, p))
        elif m := LEGACY.match(p.name):
            found.append((int(m.group(1)), 0, p))
    return max(found)[2] if found else None


def read_meta(path: Path) -> dict:
    """{"step", "offsets", …} of a checkpoint, without loading its tensors (a legacy file is loaded whole)."""
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=False)
        return {"step": state["step"], "offsets": state["offsets"], **state.get("meta", {}), "legacy": state}
    return json.loads((path / META).read_text(encoding="utf-8"))


def save(directory: str, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer, offsets: list[int], meta: dict) -> Path:
    """Collective: every rank calls it."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    d = Path(directory)
    final, tmp = d / f"step-{step}", d / f".step-{step}.tmp"
    if dist.get_rank() == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    dist.barrier()
    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(tmp))
    dist.barrier()
    if dist.get_rank() == 0:
        with open(tmp / META, "w", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, "offsets": offsets, **meta}))
            f.flush()
            os.fsync(f.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    dist.barrier()
    return final


def load(path: Path, meta: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Collective: every rank reads its part (DCP reshards as needed) into the model and optimizer as they are now."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    if "legacy" in meta:
        if not isinstance(model, DDP):
            raise SystemExit(f"{path}: a checkpoint of an earlier version (one file); resume it without --fsdp")
        # FSDP1's full optimizer state is keyed by parameter name, DDP's by index: not loadable into DDP.
        if any(isinstance(k, str) for k in meta["legacy"]["optimizer"].get("state", {})):
            raise SystemExit(f"{path}: a checkpoint an earlier version wrote under FSDP (its optimizer state is keyed by name); resume it with that version, or start a new run")
        model.module.load_state_dict(meta["legacy"]["model"])
        optimizer.load_state_dict(meta["legacy"]["optimizer"])
        return
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    dcp.load(state, checkpoint_id=str(path))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
