import sys

from syncmaster_ray.job.entrypoint import main

sys.exit(main())
