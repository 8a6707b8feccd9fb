"""Prefix caching: how much of a prompt a provider can serve from the prompts it was sent before.

Providers discount a prompt prefix they have already seen: OpenAI counts one only in prompts of
1,024 tokens or more, and in 128-token steps; vLLM's automatic prefix caching in blocks of 16 tokens,
at any length. `Seen` gives a prompt's longest common prefix with any prompt seen before (the most a
cache that never forgets could give), `cached` rounds it as a provider counts it: bench/prefix.py
measures the share per stage with them, and `glan plan` prices it. `Blocks` matches whole blocks by
their hashes, as a provider's cache does, at a constant cost a prompt: the loopback server reports it.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Sequence
from typing import Generic, TypeVar

OPENAI = (1024, 128)  # the shortest prompt (and prefix) counted, and the step
VLLM = (0, 16)
Prompt = TypeVar("Prompt", str, bytes, tuple)


class Seen(Generic[Prompt]):
    """The prompts seen so far, sorted: the longest common prefix with any of them is with a neighbour.

    A prompt is any sequence that sorts (text, bytes, a tuple of tokens); adding one costs O(log n)
    comparisons, so a loopback server answering thousands of requests never scans them all."""

    def __init__(self) -> None:
        self.sorted: list[Prompt] = []

    def add(self, prompt: Prompt) -> int:
        """Remember `prompt`; the length of its longest common prefix with any prompt added before."""
        at = bisect_left(self.sorted, prompt)
        best = max((common(prompt, self.sorted[i]) for i in (at - 1, at) if 0 <= i < len(self.sorted)), default=0)
        self.sorted.insert(at, prompt)
        return best


def common(a: Sequence, b: Sequence) -> int:
    """The length of the longest common prefix of two sequences, compared in slices that double, then
    halve: slices compare in C, and an element loop over thousands of them in Python is slow."""
    n, low, step = min(len(a), len(b)), 0, 8
    while low < n:
        high = min(low + step, n)
        if a[low:high] == b[low:high]:
            low, step = high, step * 2
            continue
        while high - low > 1:  # the first difference is in [low, high)
            middle = (low + high) // 2
            if a[low:middle] == b[low:middle]:
                low = middle
            else:
                high = middle
        return low
    return n


def cached(prefix: int, length: int, rule: tuple[int, int] = OPENAI) -> int:
    """The tokens of a `prefix` already sent that a provider counts as cached in a prompt of `length`:
    none under the rule's minimum (a prompt or a prefix), else the prefix rounded down to its steps."""
    minimum, step = rule
    return prefix // step * step if length >= minimum and prefix >= minimum else 0


class Blocks:
    """The prompts seen so far as the hashes of their prefixes at every block boundary.

    A prompt's longest prefix already seen, in whole blocks, costs a hash a block of it, however many
    prompts came before (no scan, no sorted insert: a loopback server answers thousands of requests)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hashes: set[bytes] = set()

    def add(self, prompt: bytes) -> int:
        """Remember `prompt`; the length of its longest prefix of whole blocks that a prompt added before had."""
        running, matched, matching = hashlib.blake2b(digest_size=16), 0, True
        for end in range(self.size, len(prompt) + 1, self.size):
            running.update(prompt[end - self.size : end])
            digest = running.digest()  # the hash of prompt[:end]; the running hash goes on
            matching = matching and digest in self.hashes
            matched += self.size * matching
            self.hashes.add(digest)
        return matched
