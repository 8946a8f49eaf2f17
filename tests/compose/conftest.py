"""Fixtures of the compose tests."""

import importlib.util
from types import ModuleType

import pytest

from devstack.config import REPO_ROOT


@pytest.fixture(scope="session")
def keys_init() -> ModuleType:
    """deploy/compose/service_keys.py, the keys-init service's script, as a module."""
    spec = importlib.util.spec_from_file_location("service_keys", REPO_ROOT / "deploy" / "compose" / "service_keys.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
