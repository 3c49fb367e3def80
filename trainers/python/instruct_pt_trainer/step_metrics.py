"""The trainer's per-step metrics to ClickHouse (table trainer_steps, created by instruct-pt's migrations: `ipt serve`
or any pipeline command), over its HTTP interface. Training never waits on it: rows go to a thread that sends them
(a bounded queue: when ClickHouse is slow or away, the oldest unsent rows are dropped and counted), a failed insert is
counted, the first failure is reported, and the JSON lines on stdout stay the record."""
from __future__ import annotations

import base64
import json
import queue
import sys
import threading
import urllib.parse
import urllib.request


class ClickHouseSteps:
    def __init__(self, url: str, database: str, run_id: str, job: str, user: str | None = None, password: str | None = None, timeout_s: float = 5.0):
        query = f"INSERT INTO {database}.trainer_steps FORMAT JSONEachRow"
        self.endpoint = f"{url.rstrip('/')}/?{urllib.parse.urlencode({'query': query})}"
        self.headers = {"Content-Type": "application/x-ndjson"}
        if user:
            self.headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        self.run_id, self.job, self.timeout_s = run_id, job, timeout_s
        self.written = self.failed = self.dropped = 0
        self.rows: queue.Queue = queue.Queue(maxsize=1000)
        self.sender = threading.Thread(target=self._send_all, name="clickhouse-steps", daemon=True)
        self.sender.start()

    def write(self, time_ms: int, m: dict) -> None:
        """Queues one step's metrics (the printed JSON line's fields); returns at once."""
        row = {
            "run_id": self.run_id, "job": self.job, "step": m["step"], "time_ms": time_ms, "loss": float(m["loss"]),
            "held_out_loss": m.get("heldOutLoss"), "lr": float(m["lr"]), "grad_norm": float(m["gradNorm"]),
            "tokens_per_second": float(m["tokensPerSecond"]), "mfu": m.get("mfu"), "ranks": m.get("ranks", 1), "tokens": m.get("tokens", 0),
        }
        while True:
            try:
                self.rows.put_nowait(json.dumps(row).encode())
                return
            except queue.Full:
                try:
                    self.rows.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def close(self, wait_s: float = 10.0) -> None:
        """Sends what is queued, waiting at most wait_s."""
        try:
            self.rows.put(None, timeout=wait_s)
        except queue.Full:
            return
        self.sender.join(wait_s)

    def _send_all(self) -> None:
        while (body := self.rows.get()) is not None:
            self._send(body)

    def _send(self, body: bytes) -> None:
        try:
            req = urllib.request.Request(self.endpoint, data=body, headers=self.headers, method="POST")
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                r.read()
            self.written += 1
        except Exception as err:  # noqa: BLE001 - any failure is counted; training goes on
            self.failed += 1
            if self.failed == 1:
                detail = err.read().decode(errors="replace")[:300] if hasattr(err, "read") else str(err)
                print(f"trainer metrics: writing to ClickHouse ({self.endpoint.split('?')[0]}) failed: {detail.strip()}; training goes on, the JSON lines on stdout are the record", file=sys.stderr)
