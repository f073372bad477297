"""Default bounds of mhw's servers and clients, and of the CLI options that change them.

One definition for both: the command modules take their option defaults from here, and
importing :mod:`~mh_webhook_cli.receive.http` (httptools) or :mod:`~mh_webhook_cli.send.delivery`
(asyncio, ssl) for a number would cost every ``mhw listen --help`` or ``mhw events list``
tens of milliseconds (``python -X importtime``; ``bench/startup.py``).
"""

from __future__ import annotations

MAGIC_HOUR_TIMEOUT_SECONDS = 10.0
"""Magic Hour gives a handler ten seconds to answer before it counts the delivery as failed."""
DEFAULT_TOLERANCE_SECONDS = 300
"""Magic Hour's docs recommend rejecting timestamps more than five minutes from now (here, not
in :mod:`~mh_webhook_cli.core.signing`, so that an option's default costs no hashlib)."""

MAX_BODY_DEFAULT = 1024 * 1024
"""The largest request body ``mhw listen`` accepts (bytes): a Magic Hour event is a few KiB."""
READ_TIMEOUT_DEFAULT = 10.0
"""Seconds a client may take to send one whole request once it has started."""
IDLE_TIMEOUT_DEFAULT = 5.0
"""A webhook sender reuses a connection for deliveries that follow each other (a burst,
a retry); one silent for seconds is unlikely to carry another soon, and each holds a
file descriptor a stranger could hoard. 5 s is uvicorn's default too."""
MAX_CONNECTIONS_DEFAULT = 200
"""Under the smallest common limit on open files (256 on macOS), which the store, the
tunnel and Python itself share with the connections."""
