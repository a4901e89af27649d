from syncmaster_ray.cli import main

main()
