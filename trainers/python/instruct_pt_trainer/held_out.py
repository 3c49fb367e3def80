"""A held-out domain set for periodic evaluation, as Megatron indexed datasets (`ipt shards` writes them: send the
held-out texts through the sink as their own run and export it). Read with numpy, the format being
megatron-core's: the index's sequence lengths and byte offsets into the .bin of token ids."""
from __future__ import annotations

import struct

import numpy as np
import torch

MAGIC = b"MMIDIDX\x00\x00"
DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 8: np.uint16}


def read_indexed(prefix: str) -> list[np.ndarray]:
    """The sequences of the indexed dataset at `prefix` (.idx and .bin)."""
    with open(prefix + ".idx", "rb") as f:
        head = f.read(9 + 8 + 1 + 8 + 8)
        if head[:9] != MAGIC:
            raise SystemExit(f"{prefix}.idx: not a Megatron indexed dataset")
        (version,) = struct.unpack("<Q", head[9:17])
        code = head[17]
        n, _docs = struct.unpack("<QQ", head[18:34])
        if version != 1 or code not in DTYPES:
            raise SystemExit(f"{prefix}.idx: version {version}, dtype code {code}: not read here")
        lengths = np.frombuffer(f.read(4 * n), dtype=np.int32)
        pointers = np.frombuffer(f.read(8 * n), dtype=np.int64)
    dtype = np.dtype(DTYPES[code])
    data = np.memmap(prefix + ".bin", dtype=dtype, mode="r")
    return [np.array(data[p // dtype.itemsize : p // dtype.itemsize + n_]) for p, n_ in zip(pointers.tolist(), lengths.tolist())]


def held_out_rows(prefixes: list[str], seq_len: int, limit: int) -> torch.Tensor:
    """Up to `limit` rows of seq_len + 1 ids: each sequence cut into windows of that length that share one token, as
    the sink packs (a sequence of exactly seq_len + 1 ids is one row)."""
    rows: list[np.ndarray] = []
    for prefix in prefixes:
        for s in read_indexed(prefix):
            for start in range(0, len(s) - seq_len, seq_len):
                rows.append(s[start : start + seq_len + 1])
                if len(rows) == limit:
                    return torch.from_numpy(np.stack(rows).astype(np.int64))
    if not rows:
        raise SystemExit(f"--held-out {' '.join(prefixes)}: no sequence of {seq_len + 1} tokens or more")
    return torch.from_numpy(np.stack(rows).astype(np.int64))


@torch.no_grad()
def held_out_loss(model: torch.nn.Module, rows: torch.Tensor, batch_size: int, device: torch.device) -> float:
    """Mean next-token cross-entropy over the rows. Every rank evaluates all of them (under FSDP2 every forward is a
    collective, so all ranks run the same passes), and gets the same number."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, rows.shape[0], batch_size):
        b = rows[i : i + batch_size].to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False):
            logits = model(input_ids=b[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), b[:, 1:].reshape(-1), reduction="sum")
        total += float(loss)
        count += b[:, 1:].numel()
    if was_training:
        model.train()
    return total / count
