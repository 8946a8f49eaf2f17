"""Secrets handed over as files (compose's keys-init writes them), for the settings of the host and the UI alike."""

from pathlib import Path
from typing import Any


def secrets_from_files(data: Any, *names: str) -> Any:
    """Each NAME left unset (or empty) read from the file NAME_FILE names, when it names one.

    For a settings class's `model_validator(mode="before")`: `data` is the raw field values, lower-case names.
    """
    if not isinstance(data, dict):
        return data
    for name in names:
        path = data.get(f"{name}_file")
        if path and not data.get(name):
            try:
                data = {**data, name: Path(path).read_text().strip()}
            except OSError as exc:
                raise ValueError(f"{name.upper()}_FILE: cannot read {path}: {exc.strerror}") from None
    return data
