"""`python -m kubestack` is the `kubestack` command."""

import sys

from kubestack.cli import main

sys.exit(main())
