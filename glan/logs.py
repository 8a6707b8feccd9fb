"""Log files of jobs and scripts, and the peak memory they report at the end."""

from __future__ import annotations

import atexit
import logging
import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def peak_rss_mib() -> int:
    """This process's peak RSS: on the stage server, the peak over every job it has run so far.

    From VmHWM where there is /proc: ru_maxrss keeps the RSS of the process this one was forked
    from (Snakemake's), so a small job would report Snakemake's size.
    """
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) // 1024
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak // (1024 * 1024) if sys.platform == "darwin" else peak // 1024  # bytes on macOS, KiB elsewhere


def job_logger(path: str | None) -> logging.Logger:
    """A logger of one job's own, to its log file: several jobs may run in one process (the stage server)."""
    logger = logging.Logger(f"glan.{path}", logging.INFO)
    logger.addHandler(_log_handler(path))
    return logger


def close_logger(logger: logging.Logger) -> None:
    for handler in logger.handlers:
        handler.close()
    logger.handlers.clear()


def setup_logging(path: str | None) -> None:
    """The `glan` logger of a whole-dataset rule's script, to its log file; its last line is the
    script's peak RSS, since these rules read the whole dataset (bench/scale.py reports it)."""
    logger = logging.getLogger("glan")
    logger.handlers[:] = [_log_handler(path)]
    logger.setLevel(logging.INFO)
    atexit.register(lambda: logger.info("process peak RSS %d MiB", peak_rss_mib()))


@contextmanager
def said_in_one_line(step: str, *errors: type[BaseException]) -> Iterator[None]:
    """A whole-dataset script's `errors`, which say what to change, reach the person as one line (the
    script's exit message, in Snakemake's output), their traceback the script's log: as a stage job's do
    (glan.runtime.job.failure_paragraph)."""
    try:
        yield
    except errors as error:
        logging.getLogger("glan").exception("%s failed", step)
        sys.exit(f"{step} failed: {error}")


def _log_handler(path: str | None) -> logging.Handler:
    handler = logging.FileHandler(path) if path else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    return handler
