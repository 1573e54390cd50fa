import sys

from crlm_bench.cli import main

sys.exit(main())
