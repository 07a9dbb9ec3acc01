"""One declaration of every record layout (``spec``) and the views derived from it."""

from livestack.schema import spec
from livestack.schema.dtypes import (  # noqa: F401
    DTYPES, DTYPE_BY_KIND, HEADER, JOURNAL, SLOT64, SLOT128, ENUMS, new, slot_dtype,
    RecordKind, RecordFlag, Side, FeedStatus, ExecType, OrderCmdType, OrdType, TimeInForce,
    OrderState, TradingState, DenyReason, ControlCmdType, ControlStatus, ControlError, RiskLimit,
    Anomaly, ErrorAction,
)
from livestack.schema.fixedpoint import FixedPointError, parse_fixed, format_fixed  # noqa: F401

SCHEMA_VERSION = spec.SCHEMA_VERSION
