"""``python -m cqrs_kit.projections``: see :mod:`cqrs_kit.projections.cli`."""

import sys

from cqrs_kit.projections.cli import main

sys.exit(main())
