"""Scheduled materialization: cron math (cron.py, a pure library), leases, the runner that
keeps every scheduled view fresh, and the status of each view against its expected
freshness."""
