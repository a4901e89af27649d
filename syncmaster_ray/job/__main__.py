from syncmaster_ray.job.entrypoint import exit_now, main

exit_now(main())
