import sys

from ops_pipelines.demo.runner import main

sys.exit(main())
