"""Exceptions raised by the cluster package."""

from __future__ import annotations


class ClusterError(Exception):
    """Base class of every error the cluster package raises on purpose."""


class ClusterUnavailable(ClusterError):
    """The configured Redis cannot be reached (or refused our credentials)."""


class NodeDraining(ClusterError):
    """This node is stopping: it takes no new consultation (another node will)."""
