"""This node among several ([cluster] redis_url): registry entry, live consultations, day lists.

Each node publishes, at every heartbeat, the live status of the consultations it
serves; a day list shows that status for the consultations served by other nodes.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

from cluster import Cluster, NodeInfo

from clinic import Consultation, ConsultationState, Role, Stage

from .config import Config
from .call.hub import Hub, HubRegistry

Status = tuple[str, str | None]


def node_id(config: Config) -> str:
    """This node's name in the registry: configured, else host name and HTTP port."""
    return config.cluster.node_id or f"{socket.gethostname()}:{config.http.port}"


def hub_status(hub: Hub | None, stored: ConsultationState) -> Status:
    """absent / waiting-room / in-call / ended / closed, and the waiting patient's test verdict."""
    # closing happens outside the hub, so the stored state wins once closed
    state = hub.state.consultation if hub is not None and stored is not ConsultationState.CLOSED else stored
    if state is ConsultationState.CLOSED:
        return "closed", None
    if state is ConsultationState.ENDED:
        return "ended", None
    if hub is None or Role.PATIENT not in hub.connections:
        return "absent", None
    if hub.state.stage(Role.PATIENT) is Stage.IN_CALL:
        return "in-call", None
    readiness = hub.readiness.get(Role.PATIENT)
    verdict = "untested" if readiness is None or readiness.test is None else readiness.test.verdict
    return "waiting-room", verdict


async def join(config: Config, hubs: HubRegistry) -> Cluster | None:
    """Join the cluster when [cluster] redis_url is set; ClusterUnavailable if Redis is unreachable."""
    c = config.cluster
    if not c.redis_url:
        return None

    def live() -> dict[str, dict[str, Any]]:
        statuses = {hub.id: hub_status(hub, hub.state.consultation) for hub in hubs.hubs()}
        return {cid: {"status": status, "readiness": verdict} for cid, (status, verdict) in statuses.items()}

    node = NodeInfo(node_id(config), config.http.public_url, tuple(config.ice.host_addresses))
    return await Cluster.join(c.redis_url, node, ttl=c.node_ttl_seconds, heartbeat=c.heartbeat_seconds, live=live)


async def elsewhere(cluster: Cluster | None, hubs: HubRegistry,
                    consultations: Iterable[Consultation]) -> dict[str, Status]:
    """The live status of these consultations that another node serves (none without a cluster)."""
    wanted = [c.id for c in consultations
              if hubs.find(c.id) is None and c.state not in (ConsultationState.CLOSED, ConsultationState.ENDED)]
    if cluster is None or not wanted:
        return {}
    found = await cluster.presence(wanted)
    return {cid: (str(p["status"]), None if p.get("readiness") is None else str(p["readiness"]))
            for cid, p in found.items() if p.get("node") != cluster.node_id}


async def served_elsewhere(cluster: Cluster | None, consultation_id: str, *, claim: bool) -> str | None:
    """The base URL of the node serving this consultation when it is not us, else None.

    `claim`: take the consultation for this node when no node serves it (SET NX: one
    node wins).  Browsers are sent to the owner rather than relayed to it: the media
    must reach the owner's SFU anyway, so a relay would add latency for nothing.
    """
    if cluster is None:
        return None
    owner = await cluster.claim(consultation_id) if claim else await cluster.owner(consultation_id)
    if owner is None or owner == cluster.node_id:
        return None
    for node in await cluster.nodes():
        if node.node_id == owner:
            return node.base_url.rstrip("/")
    return None


async def released(cluster: Cluster | None, hubs: HubRegistry, consultation_id: str) -> None:
    """Hand the consultation back once this node no longer serves it (its last socket closed)."""
    if cluster is not None and hubs.find(consultation_id) is None:
        await cluster.release(consultation_id)
