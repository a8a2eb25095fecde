import sys

from hypnoscope.cli import main

sys.exit(main())
