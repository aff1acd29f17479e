"""``python -m nasx.cli``: the `nasx` command."""

import sys

from nasx.cli import main

sys.exit(main())
