"""Which address browsers are told for each address the SFU binds ([ice] announce, discover_with_stun)."""

from __future__ import annotations

import logging

from sfu.discovery import public_address
from sfu.errors import DiscoveryFailed

from .config import IceConfig

logger = logging.getLogger(__name__)


async def announced_addresses(ice: IceConfig) -> dict[str, list[str]]:
    """Bound address -> announced addresses: the configured ones, then those a STUN server reports."""
    found = {entry.bind: list(entry.addresses) for entry in ice.announce}
    if ice.discover_with_stun:
        host, _, port = ice.discover_with_stun.rpartition(":")
        for bind in ice.host_addresses:
            if bind in found:
                continue
            try:
                outside = await public_address(bind, host.strip("[]"), int(port))
            except (DiscoveryFailed, OSError) as exc:
                # still usable where browsers reach the bound address; the operator sees why not
                logger.warning("no outside address found for %s through %s (%s): announcing it as bound",
                               bind, ice.discover_with_stun, exc)
                continue
            logger.info("ICE: %s is reached as %s (STUN %s)", bind, outside, ice.discover_with_stun)
            if outside != bind:
                found[bind] = [outside]
    return found
