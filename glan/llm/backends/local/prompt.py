"""Prompts: chat messages as a plain document for a base model to continue, and where its answer ends.

The model file has no chat template, and a base model loops on one. Free text is framed as
"Question: ... Answer:" and ends at the first blank line that closes a paragraph: one focused
answer, before the model wanders off.
"""

from __future__ import annotations

FREE_TEXT_STOPS = ["\nQuestion:", "<end_of_turn>", "<start_of_turn>"]
# Free text starts with a visible character (a leading blank line would stop it before it begins).
FREE_TEXT_GRAMMAR = r"""root ::= " "? [^\x00-\x20] [^\x00-\x08\x0B\x0C\x0E-\x1F]*"""


def document(messages: list[dict], mode: str) -> str:
    """System and user texts separated by blank lines, then the cue for the reply.

    mode "outline": the grammar writes the first label itself; "json": cued with "JSON:";
    "text": the last user message becomes "Question: ..." and the reply is cued with "Answer:".
    """
    parts = [m["content"].strip() for m in messages if m.get("content", "").strip()]
    if mode == "outline":
        return "\n\n".join(parts) + "\n\n"
    if mode == "json":
        return "\n\n".join([*parts, "JSON:"]) + "\n"
    if parts and messages[-1]["role"] == "user":
        parts[-1] = "Question: " + parts[-1]
    return "\n\n".join([*parts, "Answer:"])


def paragraph_end(text: str) -> int | None:
    """Where an answer ends: the first blank line after a paragraph that does not end with a colon
    (a colon introduces what follows, such as a list or a formula). None while the answer goes on."""
    start = len(text) - len(text.lstrip())
    at = text.find("\n\n", start)
    while at != -1:
        if not text[start:at].rstrip().endswith(":"):
            return at
        at = text.find("\n\n", at + 2)
    return None
