"""What a node tells the others about itself."""

from __future__ import annotations

import dataclasses
import json
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class NodeInfo:
    """One `teleconsult serve` process of the cluster."""

    node_id: str
    # the address browsers use for this node (a node can send a browser there)
    base_url: str
    # the addresses its SFU offers media on (ICE host candidates)
    media_addresses: tuple[str, ...] = ()
    # live consultations it serves
    load: int = 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> NodeInfo:
        data: dict[str, Any] = json.loads(text)
        return cls(node_id=str(data["node_id"]), base_url=str(data["base_url"]),
                   media_addresses=tuple(str(a) for a in data.get("media_addresses", ())),
                   load=int(data.get("load", 0)))
