"""Headline numbers: glued as plain floats, printed readably, logged for the determinism check."""

import json

import numpy as np
import torch

from bertbook.glue import record


def test_record_prints_and_logs_plain_floats(tmp_path, monkeypatch, capsys):
    log = tmp_path / "glue.jsonl"
    monkeypatch.setenv("BERTBOOK_GLUE_LOG", str(log))
    assert record("demo_acc", torch.tensor(0.25)) is None
    record("demo_time", np.float32(1.5), "{:.1f}", timing=True)
    assert capsys.readouterr().out.splitlines() == ["demo_acc = 0.250", "demo_time = 1.5"]
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert entries == [
        {"name": "demo_acc", "value": "0.25", "timing": False},
        {"name": "demo_time", "value": "1.5", "timing": True},
    ]
