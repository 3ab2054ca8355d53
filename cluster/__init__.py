"""Several nodes serving one site, coordinated through Redis ([cluster] redis_url).

The node registry (heartbeats with expiry), which node owns each live consultation
(claimed atomically, taken over when its owner's claim expires) and each live
consultation's presence, for day lists on any node.  Imports neither clinic/ nor aiohttp.
"""

from .cluster import Cluster
from .errors import ClusterError, ClusterUnavailable, NodeDraining
from .node import NodeInfo

__all__ = ["Cluster", "ClusterError", "ClusterUnavailable", "NodeDraining", "NodeInfo"]
