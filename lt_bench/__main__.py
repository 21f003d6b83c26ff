import sys

from lt_bench.cli import main

sys.exit(main())
