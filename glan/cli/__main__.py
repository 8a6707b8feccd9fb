import sys

from glan.cli import main

sys.exit(main())
