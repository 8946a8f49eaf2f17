"""One-time export of a sentence-transformers model to ONNX, dynamically quantised to int8, cached on disk."""

import fcntl
import hashlib
import importlib.metadata
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

# Bump when the export recipe changes so old cache files are not reused.
RECIPE = "2"
OPSET = 17
VERSIONED_PACKAGES = ("torch", "transformers", "onnx", "onnxruntime")


def weights_digest(model_path: Path) -> str:
    """sha256 of the model's weights file(s), read in blocks."""
    digest = hashlib.sha256()
    weights = sorted(model_path.glob("*.safetensors")) or sorted(model_path.glob("*.bin"))
    if not weights:
        raise FileNotFoundError(f"no weights file under {model_path}")
    for path in weights:
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def cache_key(model_path: Path) -> str:
    """Changes with the weights, the export recipe and the versions of everything that shapes the file."""
    versions = ",".join(f"{name}={importlib.metadata.version(name)}" for name in VERSIONED_PACKAGES)
    material = f"{weights_digest(model_path)}|{versions}|opset={OPSET}|recipe={RECIPE}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


@contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """An flock held across processes (and across threads, each opening the file itself)."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def export_int8(model_path: Path, cache_dir: Path, stem: str) -> Path:
    """The cached int8 ONNX file for the model at `model_path`, exporting it first if no process has yet."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{stem}-int8-{cache_key(model_path)}.onnx"
    if target.exists():
        return target
    with exclusive(cache_dir / f".{stem}.lock"):
        if target.exists():  # another process exported it while we waited for the lock
            return target
        log.info("exporting %s to ONNX int8 under %s (once)", stem, cache_dir)
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=f".{stem}-") as work:
            fp32 = Path(work) / "model.onnx"
            int8 = Path(work) / "model-int8.onnx"
            _export_fp32(model_path, fp32)
            _quantize(fp32, int8)
            # Same filesystem, so the rename is atomic: readers see no file or the whole file.
            os.replace(int8, target)
    return target


def _export_fp32(model_path: Path, destination: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
    # Eager attention exports as plain MatMul/Softmax; the SDPA path adds IsNaN/Where guards that cost ~14% at run time.
    model = AutoModel.from_pretrained(str(model_path), local_files_only=True, attn_implementation="eager").eval()

    class LastHiddenState(torch.nn.Module):
        """Positional inputs only: exporting the HF model itself trips over its keyword arguments (use_cache)."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.m = inner

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            return self.m(  # type: ignore[no-any-return]
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = tokenizer(["an example sentence", "another one"], padding=True, return_tensors="pt")
    inputs = (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last"]}
    with torch.no_grad():
        torch.onnx.export(
            LastHiddenState(model),
            inputs,
            str(destination),
            input_names=names,
            output_names=["last"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def _quantize(source: Path, destination: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel scales keep int8 within cosine ~0.99 of fp32; one scale per tensor drifts to ~0.91 on long chunks.
    quantize_dynamic(str(source), str(destination), weight_type=QuantType.QInt8, per_channel=True)
