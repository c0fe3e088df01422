"""``python -m flows_torch export|import``: see :mod:`flows_torch.cli`."""

import sys

from .cli import main

sys.exit(main())
