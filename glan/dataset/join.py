"""The dataset: every discipline's answer records, in taxonomy order, as one chat-format JSONL file."""

from __future__ import annotations

from pathlib import Path

from glan.io import open_atomic, read_chunks


def concatenate(answer_files: list[str], output: str | Path) -> int:
    """Answer files already hold finished records, one per line; joining them is all that is left.

    Copied a chunk at a time, so memory does not grow with the dataset; each checked against the sum
    its stage wrote (an answer file changed by hand stops the join, and no dataset is written)."""
    lines = 0
    with open_atomic(output) as out:
        for path in answer_files:
            for chunk in read_chunks(path):
                out.write(chunk)
                lines += chunk.count(b"\n")
    return lines
