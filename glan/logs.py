"""Log files of jobs and scripts, and the peak memory they report at the end."""

from __future__ import annotations

import atexit
import logging
import resource
import sys


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
    logger.addHandler(log_handler(path))
    return logger


def close_logger(logger: logging.Logger) -> None:
    for handler in logger.handlers:
        handler.close()
    logger.handlers.clear()


def setup_logging(path: str | None) -> None:
    """The `glan` logger of a rule's script, to its log file; its last line is the script's peak RSS
    (bench/scale.py reports it). The whole-dataset steps log through glan.dataset.steps.run instead."""
    logger = logging.getLogger("glan")
    logger.handlers[:] = [log_handler(path)]
    logger.setLevel(logging.INFO)
    atexit.register(lambda: logger.info("process peak RSS %d MiB", peak_rss_mib()))


def log_handler(path: str | None) -> logging.Handler:
    """A handler to a job's log file (to stderr without one), each line with its time and level."""
    handler = logging.FileHandler(path) if path else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    return handler
