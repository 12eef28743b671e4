import sys

from repsim_utils.driver.cli import main

sys.exit(main())
