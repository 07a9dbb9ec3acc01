"""The Core Runtime (Cython, no I/O): state, strategies, risk, execution control, order lifecycle.

``Core`` is the one entry point; see ``livestack/core/core.pyx`` and ``cext/ls_core.h``.
"""

from livestack.core.core import Core, RISK_KEYS, GLOBAL_RISK_KEYS, parse_risk, transition_table  # noqa: F401
from livestack.core.strategy import Strategy, CfuncStrategy, PyStrategy  # noqa: F401
