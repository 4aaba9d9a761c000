"""``python -m svac.evaluation eval BENCHMARK ...`` (the same as ``svac eval BENCHMARK ...``)."""

import sys

from svac.evaluation.cli_args import main

sys.exit(main())
