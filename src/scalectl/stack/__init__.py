"""`scalectl stack`: the reference app with its PostgreSQL, Redis, workers, nginx and
Prometheus, run on loopback from a plan's local profile."""
