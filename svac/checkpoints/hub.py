"""Resolving a checkpoint argument: a local folder, or a Hugging Face Hub id fetched with ``huggingface_hub``.

Hub downloads happen on the user's machine through ``huggingface_hub.snapshot_download``:
the local cache is tried first (no network), then the Hub unless offline mode is on
(``HF_HUB_OFFLINE=1``) or ``local_files_only=True``. Only weights (safetensors), JSON
configs and tokenizer files are fetched -- never Python files or pickles, which svac would
not run or unpickle anyway.
"""

from __future__ import annotations

import re
from pathlib import Path

from svac.errors import CheckpointError

#: ``owner/name`` as the Hub spells repository ids.
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: Files svac reads from a Hub repository.
ALLOW_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja", "adapter/*")


def looks_like_hub_id(spec: str) -> bool:
    """Whether ``spec`` has the ``owner/name`` form of a Hub repository id (and is not an existing path)."""
    return bool(HUB_ID.match(spec)) and not Path(spec).exists()


def resolve_checkpoint(spec: str | Path, *, revision: str | None = None, cache_dir: str | Path | None = None,
                       local_files_only: bool = False) -> Path:
    """The local folder of checkpoint ``spec``.

    Args:
        spec: an existing folder, or a Hub id ``owner/name`` (e.g. ``ByteDance/Sa2VA-1B``).
        revision: Hub branch, tag or commit (default: ``main``).
        cache_dir: Hub cache folder (default: ``huggingface_hub.constants.HF_HUB_CACHE``,
            i.e. ``$HF_HOME/hub``).
        local_files_only: never use the network.

    Returns:
        The folder (for a Hub id, the snapshot folder inside the cache).

    Raises:
        CheckpointError: when ``spec`` is neither a folder nor a Hub id; or the Hub id is not
            in the cache and cannot be downloaded (offline mode, no network, unknown or gated
            repository) -- the message names the cache folder that was searched.
    """
    path = Path(spec)
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{spec} is a file, not a checkpoint folder")
    if not HUB_ID.match(str(spec)):
        raise CheckpointError(f"{spec} is neither a checkpoint folder nor a Hugging Face Hub id (owner/name)")
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    cache = Path(cache_dir) if cache_dir is not None else Path(constants.HF_HUB_CACHE)
    kwargs = dict(repo_id=str(spec), revision=revision, cache_dir=str(cache), allow_patterns=list(ALLOW_PATTERNS))
    try:
        return Path(snapshot_download(local_files_only=True, **kwargs))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        pass
    offline = bool(constants.HF_HUB_OFFLINE)
    if local_files_only or offline:
        why = "offline mode is on (HF_HUB_OFFLINE=1)" if offline else "local_files_only=True"
        raise CheckpointError(f"{spec} is not in the Hugging Face cache {cache} and {why}, so it cannot be "
                              f"downloaded; download it on a machine with network (hf download {spec}) and copy "
                              f"the cache folder, or pass a local folder")
    try:
        return Path(snapshot_download(**kwargs))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise CheckpointError(f"{spec} is not in the Hugging Face cache {cache} and the Hub cannot be reached "
                              f"(no network?): {exc}") from exc
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot download {spec} from the Hugging Face Hub into {cache}: {exc}") from exc
