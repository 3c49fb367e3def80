import io
import json
import struct

import fastavro
import numpy as np
import pytest

from instruct_pt_trainer.token_batches import decode_value, token_batch

SCHEMA = json.load(open(__file__.rsplit("/trainers/", 1)[0] + "/schemas/token-batch.avsc"))


class FixedSchemas:
    def get(self, schema_id):
        assert schema_id == 7
        return fastavro.parse_schema(SCHEMA)


def encode(record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(SCHEMA), record)
    return bytes([0]) + struct.pack(">I", 7) + buf.getvalue()


def record(dtype: str, ids: list[int]) -> dict:
    fmt = "<u2" if dtype == "uint16" else "<u4"
    return {
        "runId": "r", "globalStep": 5, "rank": 1, "step": 2, "seqLen": 3, "batchSize": 2, "vocabSize": 70000 if dtype == "uint32" else 100,
        "dtype": dtype, "tokens": np.array(ids, dtype=fmt).tobytes(), "sources": [{"source": "raw", "tokens": 6}], "lastMixIndex": 9, "createdAt": 0,
    }


@pytest.mark.parametrize("dtype", ["uint16", "uint32"])
def test_decodes_wire_format_into_rows_of_seq_len_plus_one(dtype):
    ids = [1, 2, 3, 4, 4, 5, 6, 65535 if dtype == "uint16" else 69999]
    b = token_batch(decode_value(encode(record(dtype, ids)), FixedSchemas()))
    assert b.tokens.shape == (2, 4)
    assert b.tokens.tolist() == [ids[:4], ids[4:]]
    assert (b.rank, b.step, b.global_step, b.sources) == (1, 2, 5, {"raw": 6})


def test_rejects_a_batch_of_the_wrong_size_and_non_wire_values():
    with pytest.raises(ValueError, match="expected 2 x 4"):
        token_batch(decode_value(encode(record("uint16", [1, 2, 3])), FixedSchemas()))
    with pytest.raises(ValueError, match="wire format"):
        decode_value(b"\x01abc", FixedSchemas())
