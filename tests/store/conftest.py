"""Makes the shared contract-following event factory (tests/collector/ingest_events.py)
importable from this folder's tests."""

import sys
from pathlib import Path

_FACTORY_DIR = str(Path(__file__).resolve().parents[1] / "collector")
if _FACTORY_DIR not in sys.path:
    sys.path.insert(0, _FACTORY_DIR)
