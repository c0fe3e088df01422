"""flows_torch: swift-normalizing-flows model files as PyTorch modules, and back.

- ``load(path)``: a model file, on any base it can hold (:mod:`flows_torch.bases`), as a
  ``torch.nn.Module`` (:class:`Flow`) in zuko's convention:
  ``flow(context)`` is a ``torch.distributions.Distribution`` with ``log_prob``, ``sample`` and
  ``rsample``; its parameters carry the file's dotted names (``bijector.0.conditioner.layers.0.weight``).
- ``save(flow, path)``: a :class:`Flow`, a zuko ``MAF``/``NSF``/``RealNVP``/``NICE`` flow or an
  nflows flow of masked, coupling and permutation transforms (see their modules for the bases),
  as a model file that
  ``flows logprob``, ``flows sample`` and ``flows info`` read.
- ``load_checkpoint(path)``: a ``.pt`` checkpoint written by ``python -m flows_torch export``
  (or ``flows export``) as a :class:`Flow`; ``checkpoint(flow)`` is the dict it holds.
- ``python -m flows_torch export|import``: the command line that ``flows export`` and
  ``flows import`` run (see :mod:`flows_torch.cli`).
"""

from .bijectors import MappingError
from ._format import ModelFileError
from .flow import Flow, FlowDistribution, load, save_flow
from .plans import PLANS
from .cli import checkpoint, load_checkpoint

__all__ = ["load", "save", "load_checkpoint", "checkpoint", "Flow", "FlowDistribution", "MappingError",
           "ModelFileError", "PLANS"]


def save(flow, path):
    """Writes ``flow`` (a :class:`Flow` or a supported zuko flow) as a model file, atomically."""
    if isinstance(flow, Flow):
        return save_flow(flow, path)
    module = type(flow).__module__ or ""
    if module.startswith("zuko"):
        from .zuko_export import save_zuko
        return save_zuko(flow, path)
    if module.startswith("nflows"):
        from .nflows_export import save_nflows
        return save_nflows(flow, path)
    raise MappingError(f"cannot save a {type(flow).__module__}.{type(flow).__name__}: "
                       "only flows_torch.Flow, zuko and nflows flows are mapped")
