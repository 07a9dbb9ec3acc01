"""Node assembly: configuration, the supervisor that creates shared memory and runs the processes."""

# Every process the supervisor starts imports this package (its entry point lives here): from here
# on no log record of that process carries a FIX password, API key or other secret (secrets.py).
from livestack.secrets import install_log_redaction as _install_log_redaction  # noqa: E402

_install_log_redaction()
