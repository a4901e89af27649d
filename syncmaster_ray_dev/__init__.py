"""Development and test helpers shipped beside ``syncmaster_ray`` (not imported by it): local Ray heads, nodes and
Celery workers for the demo, the tests and the bench, and the generator of docs/settings.md."""
