"""Prices and sizes as int64 fixed point with a per-instrument number of decimals.

Venue decimal strings convert exactly (no float round trip): see ``parse_fixed``.
"""

from livestack.schema._fixed import MAX_DECIMALS, FixedPointError, format_fixed, parse_fixed  # noqa: F401
