"""One data-parallel rank's token batches, read from its partition of the token topic."""
from __future__ import annotations

import uuid
from typing import Iterator

import torch
from confluent_kafka import Consumer, KafkaException, TopicPartition
from torch.utils.data import IterableDataset

from .client_settings import kafka_settings
from .token_batches import SchemaCache, decode_value, token_batch


class TokenBatchStream(IterableDataset):
    """Yields (offset, batch) for partition `rank` from `start_offset` on: input ids and targets as tensors.

    It commits nothing to Kafka: the trainer's checkpoint holds each rank's next offset, so a resume reads exactly the
    batch after the last one trained on. Batches of other runs in the topic are passed over (their offsets still
    advance). `idle_timeout_s` ends the stream when no batch arrives for that long.
    """

    def __init__(self, brokers: str, registry_url: str, topic: str, rank: int, start_offset: int, run_id: str | None = None, idle_timeout_s: float = 60.0):
        self.brokers = brokers
        self.registry_url = registry_url
        self.topic = topic
        self.rank = rank
        self.start_offset = start_offset
        self.run_id = run_id
        self.idle_timeout_s = idle_timeout_s

    def __iter__(self) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
        schemas = SchemaCache(self.registry_url)
        consumer = Consumer({
            **kafka_settings(),
            "bootstrap.servers": self.brokers,
            "group.id": f"{self.topic}.trainer.{uuid.uuid4()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        })
        consumer.assign([TopicPartition(self.topic, self.rank, self.start_offset)])
        try:
            while True:
                msg = consumer.poll(self.idle_timeout_s)
                if msg is None:
                    return
                if msg.error():
                    raise KafkaException(msg.error())
                batch = token_batch(decode_value(msg.value(), schemas))
                if self.run_id is not None and batch.run_id != self.run_id:
                    continue
                t = torch.from_numpy(batch.tokens)
                yield msg.offset(), {"input_ids": t[:, :-1].contiguous(), "labels": t[:, 1:].contiguous(), "vocab_size": batch.vocab_size, "global_step": batch.global_step}
        finally:
            consumer.close()
