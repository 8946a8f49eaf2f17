"""The `make up` stack the stack tests share (see stack_support.py)."""

from collections.abc import Iterator

import pytest
from stack_support import Stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    shared = Stack.create()
    yield shared
    shared.down()
