"""TokenBatch records (schemas/token-batch.avsc) in the Confluent wire format, decoded into token arrays."""
from __future__ import annotations

import io
import json
import struct
import urllib.request
from dataclasses import dataclass

import fastavro
import numpy as np

from .client_settings import registry_headers

MAGIC = 0


@dataclass(frozen=True)
class TokenBatch:
    run_id: str
    global_step: int
    rank: int
    step: int
    seq_len: int
    batch_size: int
    vocab_size: int
    tokens: np.ndarray  # [batch_size, seq_len + 1], int64
    sources: dict[str, int]
    last_mix_index: int


class SchemaCache:
    """Writer schemas by id, fetched once from the registry (GET /schemas/ids/{id})."""

    def __init__(self, registry_url: str):
        self.registry_url = registry_url.rstrip("/")
        self._schemas: dict[int, object] = {}

    def get(self, schema_id: int):
        if schema_id not in self._schemas:
            req = urllib.request.Request(f"{self.registry_url}/schemas/ids/{schema_id}", headers=registry_headers())
            with urllib.request.urlopen(req, timeout=30) as res:
                body = json.load(res)
            self._schemas[schema_id] = fastavro.parse_schema(json.loads(body["schema"]))
        return self._schemas[schema_id]


def decode_value(value: bytes, schemas: SchemaCache) -> dict:
    if len(value) < 5 or value[0] != MAGIC:
        raise ValueError("value is not in the schema-registry wire format (magic byte 0 + schema id)")
    (schema_id,) = struct.unpack(">I", value[1:5])
    return fastavro.schemaless_reader(io.BytesIO(value[5:]), schemas.get(schema_id))


def token_batch(record: dict) -> TokenBatch:
    dtype = {"uint16": "<u2", "uint32": "<u4"}[record["dtype"]]
    ids = np.frombuffer(record["tokens"], dtype=dtype).astype(np.int64)
    rows, width = record["batchSize"], record["seqLen"] + 1
    if ids.size != rows * width:
        raise ValueError(f"batch {record['globalStep']}: {ids.size} tokens, expected {rows} x {width}")
    return TokenBatch(
        run_id=record["runId"],
        global_step=record["globalStep"],
        rank=record["rank"],
        step=record["step"],
        seq_len=record["seqLen"],
        batch_size=rows,
        vocab_size=record["vocabSize"],
        tokens=ids.reshape(rows, width),
        sources={s["source"]: s["tokens"] for s in record["sources"]},
        last_mix_index=record["lastMixIndex"],
    )
