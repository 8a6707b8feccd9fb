"""A real single-node Slurm on this host, for tests: munged, slurmctld and slurmd, started and stopped here.

Its state (munge key and socket, state, spool, logs) lives in one temp dir and the daemons listen on
free ports. The config goes where every Slurm client looks for it, /etc/slurm/slurm.conf, as on any
cluster: the executor plugin's job steps call `srun` with SLURM_* variables (SLURM_CONF too) removed.
The file is marked as ours and removed on stop; a slurm.conf that is not ours is never overwritten.
One test cluster runs on a machine at a time: a second waits for the first (a file lock). The
daemons die with the process that started them, even when it is killed.
The daemons run as root: slurmd must, to start jobs as their users. Install the binaries with
`.ci/install-slurm` (Debian's slurm-wlm 22.05 and munge). Accounting is off (no slurmdbd): job
status comes from `squeue`, and finished jobs are recorded in the job completion log
(`jobcomp/filetxt`), read by `completed_jobs`.

Run by hand: `python tests/slurm_cluster.py` starts a cluster, prints its SLURM_CONF and waits
for Ctrl-C, then stops it.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol", "sinfo")
CONF = Path("/etc/slurm/slurm.conf")
MARK = "# A single-node test cluster of glan's tests/slurm_cluster.py: removed when it stops.\n"


LOCK = Path(tempfile.gettempdir()) / "glan-test-slurm.lock"
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: SIGTERM when the process that started it exits, however it exits."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if shutil.which(name) is None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _total_memory_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


class SlurmCluster:
    """One node (this host, by its short hostname, at 127.0.0.1) in one default partition `test`."""

    def __init__(self, cpus: int | None = None, memory_mb: int | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="glan-slurm-"))
        self.node = socket.gethostname().split(".")[0]
        self.cpus = cpus or os.cpu_count() or 1
        # Slurm refuses a node that reports less memory than configured: stay well below the total.
        self.memory_mb = memory_mb or max(1024, int(_total_memory_mb() * 0.8))
        self.conf = CONF
        self._wrote_conf = False
        self.jobcomp = self.dir / "jobcomp.txt"
        self.processes: dict[str, subprocess.Popen] = {}
        self._lock_file = None

    @property
    def env(self) -> dict[str, str]:
        """What a client (sbatch, squeue, snakemake's executor) needs to reach this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def _write_config(self) -> None:
        d = self.dir
        for sub in ("state", "spool", "munge"):
            (d / sub).mkdir(mode=0o700)
        if self.conf.exists() and not self.conf.read_text().startswith(MARK):
            raise RuntimeError(f"{self.conf} exists and is not a test cluster's: not overwriting it")
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        self._wrote_conf = True
        self.conf.write_text(
            MARK
            + "\n".join(
                [
                    "ClusterName=glantest",
                    f"SlurmctldHost={self.node}(127.0.0.1)",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={d}/munge/socket",
                    f"StateSaveLocation={d}/state",
                    f"SlurmdSpoolDir={d}/spool",
                    f"SlurmctldPidFile={d}/slurmctld.pid",
                    f"SlurmdPidFile={d}/slurmd.pid",
                    f"SlurmctldLogFile={d}/slurmctld.log",
                    f"SlurmdLogFile={d}/slurmd.log",
                    "SlurmctldDebug=info",
                    "SlurmdDebug=info",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "JobCompType=jobcomp/filetxt",
                    f"JobCompLoc={self.jobcomp}",
                    "SchedulerType=sched/backfill",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "MpiDefault=none",
                    "ReturnToService=2",
                    "MinJobAge=600",
                    "KillWait=5",
                    f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb}",
                    "PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        key = d / "munge" / "key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)

    def _spawn(self, name: str, *command: str) -> None:
        log = open(self.dir / f"{name}.out", "wb")
        self.processes[name] = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()

    def client(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            command, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=60, check=check
        )

    def start(self, timeout: float = 60) -> SlurmCluster:
        missing = missing_binaries()
        if missing:
            raise RuntimeError(f"Slurm is not installed (missing {', '.join(missing)}): run .ci/install-slurm as root")
        if os.geteuid() != 0:
            raise RuntimeError("the test cluster runs slurmd, which must run as root")
        self._lock(timeout=900)
        self._write_config()
        m = self.dir / "munge"
        self._spawn(
            "munged",
            "munged",
            "--foreground",
            "--force",
            f"--socket={m}/socket",
            f"--key-file={m}/key",
            f"--pid-file={m}/pid",
            f"--log-file={m}/log",
            f"--seed-file={m}/seed",
        )
        self._wait(lambda: (m / "socket").exists(), timeout, "munged to open its socket")
        self._spawn("slurmctld", "slurmctld", "-D", "-c", "-f", str(self.conf))
        self._spawn("slurmd", "slurmd", "-D", "-f", str(self.conf))
        self._wait(self._node_ready, timeout, f"node {self.node} to be idle")
        return self

    def _lock(self, timeout: float) -> None:
        """Wait for any other test cluster on this machine to stop: they would share /etc/slurm/slurm.conf."""
        self._lock_file = open(LOCK, "w")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another test cluster held {LOCK} for {timeout} s") from None
                time.sleep(1)

    def _node_ready(self) -> bool:
        result = self.client("sinfo", "--noheader", "--format=%T", check=False)
        return result.returncode == 0 and result.stdout.strip() == "idle"

    def _wait(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.logs()}")
            if condition():
                return
            time.sleep(0.2)
        raise RuntimeError(f"timed out after {timeout} s waiting for {what}:\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for path in sorted(self.dir.glob("*.out")) + sorted(self.dir.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name} ---\n{text[-4000:]}")
        return "\n".join(parts)

    def completed_jobs(self) -> list[dict[str, str]]:
        """Slurm's record of every finished job: JobId, Name, JobState, NodeList, ... per line."""
        if not self.jobcomp.exists():
            return []
        return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in self.jobcomp.read_text().splitlines() if line]

    def stop(self) -> None:
        """Cancel what is left, stop the daemons (slurmd first), and remove the temp dir."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            self.client("scancel", "--full", f"--nodelist={self.node}", check=False)
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)
        self.processes.clear()
        if self._wrote_conf and self.conf.exists() and self.conf.read_text().startswith(MARK):
            self.conf.unlink()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self._lock_file is not None:
            self._lock_file.close()  # releases the lock
            self._lock_file = None

    def __enter__(self) -> SlurmCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    with SlurmCluster() as cluster:
        print(f"export SLURM_CONF={cluster.conf}", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
