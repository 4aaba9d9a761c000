"""``python -m svac.evaluation eval BENCHMARK ...`` / ``python -m svac.evaluation bench-frames ...``."""

import sys

from svac.evaluation.cli_args import main

sys.exit(main())
