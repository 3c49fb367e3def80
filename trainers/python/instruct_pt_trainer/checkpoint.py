"""Checkpoints: model, optimizer, step and every rank's next offset in the token topic."""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

PATTERN = re.compile(r"^step-(\d+)\.pt$")


def latest(directory: str) -> Path | None:
    d = Path(directory)
    if not d.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := PATTERN.match(p.name))]
    return max(found)[1] if found else None


def save(directory: str, step: int, model_state: dict, optimizer_state: dict, offsets: list[int], meta: dict) -> Path:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"step-{step}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "model": model_state, "optimizer": optimizer_state, "offsets": offsets, "meta": meta}, tmp)
    # Rename is atomic: a crash mid-save never leaves a half checkpoint that looks whole.
    os.replace(tmp, path)
    return path


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)
