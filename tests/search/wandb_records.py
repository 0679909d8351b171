"""Read what W&B really wrote in an offline run, so tests check what W&B received.

wandb 0.31 ships no public reader for `run-<id>.wandb`: it is a LevelDB-style log (a 7-byte
file header, then 32 KiB blocks of chunks with a 7-byte header: crc32, little-endian uint16
length, type 1 full / 2 first / 3 middle / 4 last) whose records parse as
`wandb_internal_pb2.Record`.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _records(data: bytes) -> list[bytes]:
    assert data[:4] == b":W&B", "not a W&B log"
    pos, records, pending = HEADER, [], b""
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:  # trailer padding
            pos += left_in_block
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if length == 0 and kind == 0:
            pos += left_in_block
            continue
        payload = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            records.append(payload)
        elif kind == FIRST:
            pending = payload
        elif kind == MIDDLE:
            pending += payload
        elif kind == LAST:
            records.append(pending + payload)
            pending = b""
    return records


@dataclass
class OfflineRun:
    path: Path
    name: str = ""
    group: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    preempting: bool = False  # the run was marked preempting (W&B shows it as preempted)
    exit_code: int | None = None


def read_run(run_dir: Path) -> OfflineRun:
    from wandb.proto import wandb_internal_pb2

    log_file = next(run_dir.glob("run-*.wandb"))
    run = OfflineRun(path=run_dir)
    for raw in _records(log_file.read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.name = record.run.display_name or run.name
            run.group = record.run.run_group or run.group
            for item in record.run.config.update:
                run.config[item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                run.config[item.key] = json.loads(item.value_json)
        elif kind == "history":
            row = {}
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                row[key] = json.loads(item.value_json)
            run.history.append(row)
        elif kind == "preempting":
            run.preempting = True
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
        elif kind == "summary":
            for item in record.summary.update:
                key = item.key or "/".join(item.nested_key)
                run.summary[key] = json.loads(item.value_json)
    # wandb wraps config values as {"value": ...}
    run.config = {k: (v["value"] if isinstance(v, dict) and set(v) == {"value"} else v) for k, v in run.config.items()}
    return run


def read_runs(wandb_dir: Path) -> list[OfflineRun]:
    return [read_run(d) for d in sorted(wandb_dir.glob("offline-run-*"))]
