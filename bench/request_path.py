"""The files and cross-file calls one request of the questions stage passes through (issue 12's measure).

Runs one questions job of one request in this process (the path of a job that sends for itself;
the stage server adds the hand-over in glan/runtime/job.py and server.py) against the loopback
server, and records every call from one glan module into another. Prints the counts, the times each
file is entered (its distinct calls from other files), then the list. `--batch`: the same request in
batch mode, through one batch of the loopback server's Batch API.

The package traced is the one imported (PYTHONPATH), so an older tree is measured by this script too.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from harness import FakeLLM

import glan
from glan.config import deep_merge, load_config, stage_llm, stage_settings
from glan.io import write_json
from glan.runtime.job import StageJob
from glan.runtime.run import run_job

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = str(Path(glan.__file__).parent)
SESSIONS = [{"title": f"Session {i}", "description": "d", "key_concepts": ["x", "y", "z"]} for i in range(2)]
SYLLABUS = {
    "node": {"id": "a/b", "name": "B", "description": "d", "path": ["A", "B"]},
    "models": {"subjects": "m", "syllabus": "m"},
    "subjects": [
        {"name": "S", "level": "undergraduate", "subtopics": ["t"], "sessions": SESSIONS, "keys": {"subjects": "k"}}
    ],
}


def one_request_job(folder: Path, batch: bool) -> StageJob:
    overlay = {"llm": {"backend": "openai", "model": "fake", "endpoint": "fake"}}
    if batch:
        overlay["llm"] |= {"mode": "batch", "batch": {"gather_seconds": 0.05, "poll_seconds": 0.05}}
    config = deep_merge(load_config(ROOT), {**overlay, "stages": {"questions": {"per_subject": 1}}})
    write_json(folder / "syllabus.json", SYLLABUS)
    return StageJob(
        stage="questions",
        upstream=str(folder / "syllabus.json"),
        template=str(ROOT / "prompts/questions.yaml"),
        output=str(folder / "questions.jsonl"),
        rejects=str(folder / "questions.rejects.jsonl"),
        settings=stage_settings(config, "questions"),
        llm={**stage_llm(config, "questions"), "slots": 1},
        cache_dir=str(folder / "cache"),
        log=str(folder / "questions.log"),
    )


def traced(job: StageJob) -> tuple[set[str], set[tuple[str, str]]]:
    files, calls = set(), set()

    def where(frame) -> str:
        return f"{os.path.relpath(frame.f_code.co_filename, PACKAGE + '/..')}:{frame.f_code.co_name}"

    def profile(frame, event, arg):
        if event != "call" or not frame.f_code.co_filename.startswith(PACKAGE):
            return
        files.add(os.path.relpath(frame.f_code.co_filename, PACKAGE + "/.."))
        caller = frame.f_back
        while caller is not None and not caller.f_code.co_filename.startswith(PACKAGE):
            caller = caller.f_back  # through asyncio and the standard library to the glan frame behind the call
        if caller is not None and caller.f_code.co_filename != frame.f_code.co_filename:
            calls.add((where(caller), where(frame)))

    import openai  # noqa: F401  (loading it is not part of the path)

    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        run_job(job)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    outside = "glan/logs.py"  # the job's log file: not the request's path
    return files - {outside}, {c for c in calls if not c[1].startswith(outside)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", action="store_true", help="the request in batch mode")
    batch = parser.parse_args().batch
    with FakeLLM(batch_seconds=0.1) as server, tempfile.TemporaryDirectory() as folder:
        os.environ.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-bench")
        files, calls = traced(one_request_job(Path(folder), batch))
        sent = server.lines_billed if batch else server.count
        assert sent == 1, f"expected one request, the server answered {sent}"
    entered = Counter(callee.split(":")[0] for _, callee in calls)
    print(
        f"one questions request{' in batch mode' if batch else ''}: {len(files)} files, {len(calls)} cross-file calls"
    )
    print("\n".join(f"{path} (entered {entered[path]}x)" for path in sorted(files)))
    print("\n".join(f"  {a} -> {b}" for a, b in sorted(calls)))


if __name__ == "__main__":
    main()
