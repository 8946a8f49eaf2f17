"""The overlays, rendered once for every test module here."""

import pytest
from manifest_support import K8S, OVERLAYS, Doc, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Doc]]:
    return {overlay: render(K8S / "overlays" / overlay) for overlay in OVERLAYS}
