"""The gateway: the reference software for the Pi at a pilot site.

`agent.py` spools and forwards, `site.py` listens for the site's own sensors, `broker.py`
is the embedded broker (also the demo's), `credentials.py` edits the central Mosquitto's
password and ACL files. The command line is the composition root's (`citypilot gateway`).
"""

from ingest.gateway.agent import (
    EXIT_DRAIN_TIMEOUT,
    GatewayAgent,
    GatewayOptions,
    GatewayStats,
    UplinkSource,
    batch_messages,
)
from ingest.gateway.site import Uplink, stamp

__all__ = ["EXIT_DRAIN_TIMEOUT", "GatewayAgent", "GatewayOptions", "GatewayStats", "Uplink",
           "UplinkSource", "batch_messages", "stamp"]
