"""`python -m leadline_localstack start-kafka|stop-kafka|start-postgres|stop-postgres|status|...`."""

import sys

from leadline_localstack.cli import main

sys.exit(main())
