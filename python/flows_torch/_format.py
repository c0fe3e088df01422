"""Reading and writing model files: safetensors whose ``__metadata__`` holds the plan.

A model file (see ``Sources/NormalizingFlows/IO/ModelFile.swift``) holds the tensors
``base.<name>`` (``base.loc`` and ``base.scale`` for a normal base; see :mod:`flows_torch.bases`)
and ``bijector.<dotted module path>`` and the metadata
``format`` = ``swift-normalizing-flows``, ``format_version`` (2, or 3 for a file holding a
variational dequantizer), ``plan`` (JSON), ``base`` (JSON: ``{"type": "Normal", "eventRank": r}``,
or another base type with its settings) and ``context_size``; and, for a model written by
``flows fit`` with ``--context-columns`` or ``--dequantize``, ``data_layout`` (JSON: how it read
the data file, ``{"context_columns": [0, 2], "dequantized_columns": [], "width": 4}``), which
this package keeps and writes back as read.

Version 3 marks a file that holds a variational dequantizer q(u | k) (``dequantizer`` metadata,
``dequantizer.noise.…`` tensors), so that readers of version 2 refuse it by its version. This
package reads the version and refuses such a file by what it holds (it does not map the
dequantizer); what it writes holds none, so it writes version 2, as the Swift library does.
"""

import json
import os
import tempfile

from safetensors import safe_open
from safetensors.torch import save_file

FILE_FORMAT = "swift-normalizing-flows"
FILE_FORMAT_VERSION = 3  # the newest version read
WRITTEN_FORMAT_VERSION = 2  # a file without a variational dequantizer


class ModelFileError(ValueError):
    """A file that is not a model file this package can map, with the reason."""


def read(path):
    """Returns (tensors, metadata) of a model file after checking its format tags."""
    path = os.fspath(path)
    try:
        with safe_open(path, framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as error:  # safetensors raises several types
        raise ModelFileError(f"{path}: cannot be read as safetensors: {error}") from None
    if metadata.get("format") != FILE_FORMAT:
        raise ModelFileError(f"{path}: not a model file of this library (no '{FILE_FORMAT}' format tag)")
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        raise ModelFileError(f"{path}: format_version {metadata.get('format_version')!r} is not a number") from None
    if version > FILE_FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {version} is newer than this package reads ({FILE_FORMAT_VERSION})")
    if version < 2 and any(k.endswith("conditioner.order") for k in tensors):
        raise ModelFileError(f"{path}: format version {version} laid out masked networks differently; fit the model again")
    if "dequantizer" in metadata:
        raise ModelFileError(f"{path}: holds a variational dequantizer q(u | k) (flows fit --dequantizer variational), "
                             "which flows_torch does not map")
    for key in ("plan", "base", "context_size"):
        if key not in metadata:
            raise ModelFileError(f"{path}: the metadata lacks '{key}'")
    return tensors, metadata


def file_mode(path):
    """The mode a file written at ``path`` gets: an existing file's, else 0666 less the umask
    (as ``open`` would create it; ``mkstemp``'s temporary files are 0600)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def write(path, tensors, plan_json, base_json, context_size, data_layout=None):
    """Writes a model file atomically: a temporary file in the same folder, renamed into place.
    ``data_layout`` is the ``data_layout`` metadata text (None: none)."""
    path = os.fspath(path)
    metadata = {
        "format": FILE_FORMAT,
        "format_version": str(WRITTEN_FORMAT_VERSION),
        "plan": plan_json if isinstance(plan_json, str) else json.dumps(plan_json, sort_keys=True, separators=(",", ":")),
        "base": base_json,
        "context_size": str(int(context_size)),
    }
    if data_layout is not None:
        metadata["data_layout"] = data_layout
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    write_atomically(path, ".safetensors", lambda temporary: save_file(tensors, temporary, metadata=metadata))


def write_atomically(path, suffix, write_to):
    """Calls ``write_to(temporary)`` for a temporary file beside ``path``, gives it the mode a new
    file (or the file it replaces) would have, and renames it into place; removes it on failure."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".flows_torch-", suffix=suffix, dir=folder)
    os.close(handle)
    try:
        write_to(temporary)
        os.chmod(temporary, file_mode(path))
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
