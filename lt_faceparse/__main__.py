import sys

from lt_faceparse.cli import main

sys.exit(main())
