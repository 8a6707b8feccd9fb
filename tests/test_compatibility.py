"""A cache made before the restructure (issue 12) rebuilds with zero requests and the same dataset, byte for byte.

The fixture was built by the code of commit ffb4354 against the loopback server: three disciplines
at the tiny scale, one with instructions and stage overrides (a second model for answers), one with
pinned subjects; 62 requests, 24 records, the cache in the file layout. Its `prompts/` are the
syllabus and questions templates it was built with: they were reordered for prefix caching later
(issue 17), which changes those requests' keys by design.
"""

from __future__ import annotations

import shutil
import tarfile

import yaml
from helpers import ROOT

FIXTURE = ROOT / "tests/fixtures/before-restructure"


def test_a_cache_built_before_the_restructure_rebuilds_the_same_dataset_without_a_request(workflow):
    (workflow.dir / "taxonomy.yaml").write_text((FIXTURE / "taxonomy.yaml").read_text())
    workflow.overlay = yaml.safe_load((FIXTURE / "overlay.yaml").read_text())
    for template in (FIXTURE / "prompts").iterdir():
        shutil.copy(template, workflow.dir / "prompts" / template.name)
    with tarfile.open(FIXTURE / "cache.tar.gz") as tar:
        tar.extractall(workflow.dir, filter="data")
    workflow.run()
    assert workflow.server.count == 0
    assert workflow.dataset() == (FIXTURE / "dataset.jsonl").read_bytes()
