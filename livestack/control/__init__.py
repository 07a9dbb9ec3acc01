"""Operational Control Surface: the control process (ZeroMQ ROUTER + PUB in front of the harness's
cmd/reply/events rings), the Python client and ``livestack ctl``."""
