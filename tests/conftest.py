import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kc_instance import KcInstance, make_instance, remove_instance  # noqa: E402


@pytest.fixture(scope="session")
def kc() -> KcInstance:
    """One private Asterisk + service for the session (tests use distinct agents)."""
    inst = make_instance()
    try:
        inst.start()
        yield inst
    finally:
        if os.environ.get("KC_KEEP_LOGS"):
            print(inst.logs())
        remove_instance(inst)
