"""``python -m flows_torch``: model files to PyTorch checkpoints and back, and zuko/nflows
checkpoints to model files. ``flows export`` and ``flows import`` run this, so the mapping
lives here only.

    python -m flows_torch export MODEL.safetensors --out FILE.pt
    python -m flows_torch import FILE.pt --out MODEL.safetensors [--spec SPEC.json | --pickled-module]

**export** writes a checkpoint that ``torch.load(path, weights_only=True)`` reads (plain data,
no pickled classes, so no code runs on loading and no class must stay importable)::

    {"format": "flows_torch-checkpoint", "version": 1,
     "plan": "<plan JSON>", "base": "<base JSON>", "context_size": C,
     "state_dict": {...}}        # = flows_torch.load(MODEL).state_dict(), same names and tensors

so ``flow = flows_torch.load(MODEL); flow.load_state_dict(torch.load(FILE)["state_dict"])``
continues from it, and ``flows_torch.load_checkpoint(FILE)`` rebuilds the module alone. A
TorchScript module is not written: the Swift inverses of Planar and Sylvester layers are
per-point Newton solves that do not script, and a scripted module could not be trained
further and written back.

When the model file records how ``flows fit`` read the data (``data_layout``: its context and
dequantized columns), the checkpoint holds that text under ``"data_layout"`` too, and ``import``
writes it back.

**import** reads:

- a checkpoint written by ``export`` (recognised by its ``format``), after training in torch;
- a zuko or nflows ``state_dict`` saved with ``torch.save(flow.state_dict(), FILE)``, given
  ``--spec SPEC.json`` with the flow's constructor arguments (a state_dict holds tensors, not
  the architecture)::

      {"library": "zuko", "flow": "MAF", "arguments": {"features": 3, "transforms": 3,
                                                        "hidden_features": [64, 64]}}
      {"library": "nflows", "features": 3, "transforms": [
          {"class": "MaskedAffineAutoregressiveTransform",
           "arguments": {"features": 3, "hidden_features": 16, "use_residual_blocks": false}},
          {"class": "ReversePermutation", "arguments": {"features": 3}},
          {"class": "AffineCouplingTransform", "arguments": {"mask": [1, 0, 1]},
           "transform_net": {"class": "ResidualNet", "arguments": {"hidden_features": 32, "num_blocks": 2}}}]}

  zuko flows are any class of ``zuko.flows`` (``MAF``, ``NSF``, ``RealNVP``, ``NICE``; ``activation`` a
  ``torch.nn`` class name such as ``"ReLU"``). nflows flows are a ``CompositeTransform`` of the
  listed classes of ``nflows.transforms`` on a ``StandardNormal`` of ``features`` dimensions
  (``activation`` a ``torch.nn.functional`` name such as ``"relu"``); a coupling transform's
  ``transform_net`` is a class of ``nflows.nn.nets`` called with the kept and output feature
  counts and its ``arguments``. The state_dict's floating
  dtype is kept (the flow is built, cast to it, then loaded; missing or extra entries are errors).
- with ``--pickled-module``, a whole module saved with ``torch.save(flow, FILE)``. Unpickling
  runs code from the file: use it on files you trust only.

Errors are one line ``error: …`` on standard error with exit status 1 (2 for a malformed
command line). ``--out`` is checked before any work: it must not be the input, and its folder
must be writable; files are written atomically (a temporary file renamed into place).
"""

import argparse
import json
import os
import sys

FORMAT = "flows_torch-checkpoint"
VERSION = 1


class CommandError(Exception):
    """A user's mistake, printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit status 2, as `flows`
        sys.stderr.write(f"error: {message} (see python -m flows_torch --help)\n")
        sys.exit(2)


def _check_out(out, inputs):
    for path in inputs:
        if path is not None and os.path.exists(out) and os.path.exists(path) and os.path.samefile(out, path):
            raise CommandError(f"--out {out} is the input file {path}; writing it would destroy the input, so choose another name")
    folder = os.path.dirname(os.path.abspath(out))
    if os.path.isdir(out):
        raise CommandError(f"--out {out} is a folder")
    if not os.path.isdir(folder):
        raise CommandError(f"--out {out}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise CommandError(f"--out {out}: the folder {folder} is not writable")


def _atomic_torch_save(value, path):
    import torch

    from ._format import write_atomically

    write_atomically(path, ".pt", lambda temporary: torch.save(value, temporary))


def checkpoint(flow):
    """The plain-data checkpoint of a :class:`flows_torch.Flow` (see the module docstring)."""
    value = {
        "format": FORMAT, "version": VERSION, "plan": flow.plan,
        "base": flow.base_json,
        "context_size": int(flow.context_size),
        "state_dict": {k: v.detach().cpu().clone() for k, v in flow.state_dict().items()},
    }
    if flow.data_layout is not None:
        value["data_layout"] = flow.data_layout
    return value


def is_checkpoint(value):
    return isinstance(value, dict) and value.get("format") == FORMAT


def from_checkpoint(value, path="the checkpoint"):
    """The :class:`flows_torch.Flow` of a checkpoint written by :func:`checkpoint`."""
    from .bijectors import MappingError
    from .flow import from_file_state

    if int(value.get("version", 0)) > VERSION:
        raise MappingError(f"{path}: checkpoint version {value.get('version')} is newer than this package reads ({VERSION})")
    try:
        plan, base, context_size, state = value["plan"], value["base"], value["context_size"], value["state_dict"]
    except (KeyError, TypeError) as error:
        raise MappingError(f"{path}: not a complete flows_torch checkpoint ({error!r} missing or malformed)") from None
    if not isinstance(state, dict):
        raise MappingError(f"{path}: not a complete flows_torch checkpoint (its state_dict is a {type(state).__name__})")
    layout = value.get("data_layout")
    if layout is not None and not isinstance(layout, str):
        raise MappingError(f"{path}: the checkpoint's data_layout is a {type(layout).__name__}, not JSON text")
    flow = from_file_state(plan, base, context_size, state, path)
    flow.data_layout = layout
    return flow


def load_checkpoint(path):
    """A checkpoint file written by ``export`` (or :func:`checkpoint` and ``torch.save``) as a Flow."""
    import torch

    value = torch.load(path, map_location="cpu", weights_only=True)
    if not is_checkpoint(value):
        raise CommandError(f"{path}: not a flows_torch checkpoint (no format '{FORMAT}')")
    return from_checkpoint(value, path)


def _floating_dtype(state):
    import torch

    dtypes = {v.dtype for v in state.values() if torch.is_tensor(v) and v.is_floating_point()}
    if len(dtypes) > 1:
        raise CommandError(f"the state_dict mixes floating dtypes {sorted(map(str, dtypes))}")
    return dtypes.pop() if dtypes else torch.float32


def _zuko_flow(spec):
    import torch
    import zuko

    name = spec.get("flow")
    cls = getattr(zuko.flows, str(name), None)
    if not isinstance(cls, type):
        raise CommandError(f"--spec: zuko.flows has no flow class {name!r}")
    arguments = dict(spec.get("arguments", {}))
    if "activation" in arguments:
        activation = getattr(torch.nn, str(arguments["activation"]), None)
        if not isinstance(activation, type):
            raise CommandError(f"--spec: activation {arguments['activation']!r} is not a torch.nn class (e.g. \"ReLU\")")
        arguments["activation"] = activation
    for key in ("hidden_features",):
        if isinstance(arguments.get(key), list):
            arguments[key] = tuple(arguments[key])
    try:
        return cls(**arguments)
    except TypeError as error:
        raise CommandError(f"--spec: zuko.flows.{name}: {error}") from None


def _with_activation(arguments, functional, i):
    """``arguments`` with an ``activation`` name replaced by the torch.nn.functional function."""
    if "activation" in arguments:
        activation = getattr(functional, str(arguments["activation"]), None)
        if activation is None:
            raise CommandError(f"--spec: transform {i}: activation {arguments['activation']!r} is not in torch.nn.functional")
        arguments["activation"] = activation
    return arguments


def _nflows_flow(spec):
    import torch.nn.functional as F
    from nflows import transforms
    from nflows.nn import nets
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow as NFlow

    if "features" not in spec or not isinstance(spec.get("transforms"), list):
        raise CommandError("--spec: an nflows spec needs \"features\" and a list \"transforms\"")
    parts = []
    for i, entry in enumerate(spec["transforms"]):
        name = entry.get("class") if isinstance(entry, dict) else None
        cls = getattr(transforms, str(name), None)
        if not isinstance(cls, type):
            raise CommandError(f"--spec: transform {i}: nflows.transforms has no class {name!r}")
        arguments = _with_activation(dict(entry.get("arguments", {})), F, i)
        if "transform_net" in entry:   # a coupling transform's network: nflows.nn.nets.<class>(in, out, **arguments)
            net = entry["transform_net"] if isinstance(entry["transform_net"], dict) else {}
            net_cls = getattr(nets, str(net.get("class")), None)
            if not isinstance(net_cls, type):
                raise CommandError(f"--spec: transform {i}: nflows.nn.nets has no class {net.get('class')!r}")
            net_arguments = _with_activation(dict(net.get("arguments", {})), F, i)
            arguments["transform_net_create_fn"] = lambda n_in, n_out, c=net_cls, a=net_arguments: c(n_in, n_out, **a)
        try:
            parts.append(cls(**arguments))
        except TypeError as error:
            raise CommandError(f"--spec: transform {i} ({name}): {error}") from None
    return NFlow(transforms.CompositeTransform(parts), StandardNormal([int(spec["features"])]))


def _module_from_spec(spec_path, state):
    try:
        with open(spec_path) as f:
            spec = json.load(f)
    except OSError as error:
        raise CommandError(f"--spec {spec_path}: {error.strerror.lower()}") from None
    except ValueError as error:
        raise CommandError(f"--spec {spec_path}: not JSON ({error})") from None
    if not isinstance(spec, dict):
        raise CommandError(f"--spec {spec_path}: expected a JSON object")
    library = spec.get("library")
    try:
        if library == "zuko":
            module = _zuko_flow(spec)
        elif library == "nflows":
            module = _nflows_flow(spec)
        else:
            raise CommandError(f"--spec {spec_path}: \"library\" must be \"zuko\" or \"nflows\", got {library!r}")
    except ImportError as error:
        raise CommandError(f"--spec {spec_path}: {library} is not installed ({error}); pip install {library}") from None
    module = module.to(_floating_dtype(state))
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as error:   # shapes that differ
        lines = [line.strip() for line in str(error).splitlines() if line.strip().startswith("size mismatch")]
        first = lines[0] if lines else str(error).strip().splitlines()[0]
        raise CommandError(f"the state_dict does not fit the flow of --spec {spec_path}: {first} "
                           f"({len(lines)} entries differ in shape)") from None
    if result.missing_keys or result.unexpected_keys:
        what = (f"lacks {result.missing_keys[0]!r}" if result.missing_keys else f"has an entry {result.unexpected_keys[0]!r}"
                " the flow does not")
        raise CommandError(f"the state_dict does not fit the flow of --spec {spec_path}: it {what} "
                           f"({len(result.missing_keys)} missing, {len(result.unexpected_keys)} unexpected)")
    module.eval()
    return module


def export(model, out):
    from .flow import load

    _check_out(out, [model])
    _atomic_torch_save(checkpoint(load(model)), out)


def import_(path, out, spec=None, pickled_module=False):
    import torch

    from . import save

    _check_out(out, [path, spec])
    if pickled_module and spec:
        raise CommandError("--spec and --pickled-module exclude each other: a pickled module carries its architecture")
    try:
        value = torch.load(path, map_location="cpu", weights_only=not pickled_module)
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file") from None
    except Exception as error:  # torch raises several types for foreign or damaged files
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        hint = "" if pickled_module else " (a whole pickled module needs --pickled-module)"
        raise CommandError(f"{path}: cannot be read as a PyTorch checkpoint: {first}{hint}") from None
    if pickled_module:
        if not isinstance(value, torch.nn.Module):
            raise CommandError(f"{path}: holds a {type(value).__name__}, not a torch.nn.Module")
        value.eval()
        save(value, out)
    elif is_checkpoint(value):
        if spec:
            raise CommandError(f"{path} is a flows_torch checkpoint, which carries its plan: drop --spec")
        save(from_checkpoint(value, path), out)
    elif isinstance(value, dict) and all(torch.is_tensor(v) for v in value.values()):
        if not spec:
            raise CommandError(f"{path} is a state_dict, which holds no architecture: give --spec SPEC.json with the "
                               "flow's constructor arguments (see --help)")
        save(_module_from_spec(spec, value), out)
    else:
        raise CommandError(f"{path}: neither a flows_torch checkpoint nor a state_dict of tensors")


def main(argv=None):
    parser = _Parser(prog="python -m flows_torch", description="Model files to PyTorch checkpoints and back.")
    commands = parser.add_subparsers(dest="command", required=True)
    e = commands.add_parser("export", help="a model file as a PyTorch checkpoint (.pt)",
                            description="Writes MODEL as a checkpoint that torch.load(FILE, weights_only=True) reads: "
                                        "a dict with the plan and 'state_dict', the state_dict of flows_torch.load(MODEL).")
    e.add_argument("model", help="our model file (.safetensors)")
    e.add_argument("--out", required=True, help="the checkpoint to write (.pt); never the input")
    i = commands.add_parser("import", help="a PyTorch checkpoint as a model file",
                            description="Reads a checkpoint written by export, a zuko/nflows state_dict with --spec "
                                        "(a JSON file of constructor arguments: {\"library\": \"zuko\", \"flow\": \"MAF\", "
                                        "\"arguments\": {...}} or {\"library\": \"nflows\", \"features\": D, "
                                        "\"transforms\": [{\"class\": ..., \"arguments\": {...}}, ...]}), or with "
                                        "--pickled-module a whole module saved by torch.save(flow, FILE).")
    i.add_argument("file", help="the PyTorch file (.pt)")
    i.add_argument("--out", required=True, help="the model file to write (.safetensors); never the input")
    i.add_argument("--spec", help="JSON file with the zuko or nflows flow's constructor arguments (for a state_dict)")
    i.add_argument("--pickled-module", action="store_true",
                   help="FILE is a whole pickled module (torch.save(flow)); unpickling runs code from the file, "
                        "so use it on trusted files only")
    arguments = parser.parse_args(argv)
    from .bijectors import MappingError
    from ._format import ModelFileError

    try:
        if arguments.command == "export":
            export(arguments.model, arguments.out)
        else:
            import_(arguments.file, arguments.out, arguments.spec, arguments.pickled_module)
    except (CommandError, MappingError, ModelFileError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 1
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        sys.stderr.write(f"error: {where}{(error.strerror or str(error)).lower()}\n")
        return 1
    except Exception as error:  # a bug or a library's surprise: still one line, naming its type
        text = str(error).strip().splitlines()
        sys.stderr.write(f"error: {type(error).__name__}: {text[0] if text else 'no message'} "
                         "(unexpected; please report it with the command)\n")
        return 1
    return 0
