"""What a process pays for before it does anything: the modules every command, the API and
the workers import must not pull in qdrant-client (about 40 MB resident beside torch), which
only a Qdrant server or Qdrant local mode needs (ragline.knowledge.qdrant_store)."""

from __future__ import annotations

import subprocess
import sys


def test_the_edge_engine_processes_never_import_qdrant_client() -> None:
    probe = (
        "import sys\n"
        "import api.app, cli.main, indexer, ragline.bootstrap, workers.process\n"
        "from ragline.knowledge import edge_store, local_import\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'qdrant_client'))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "[]"
