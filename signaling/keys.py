"""Typed application keys (aiohttp's AppKey: no string-keyed state)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from cluster import Cluster

from clinic import Clinic
from clinic.boardimages import BoardImages

from .call.hub import HubRegistry
from .call.monitor import Monitor
from .config import Config
from .diskspace import DiskGuard
from .mail_sender import Mailer
from .recording_service import RecordingService

CONFIG = web.AppKey("config", Config)
CLINIC = web.AppKey("clinic", Clinic)
HUBS = web.AppKey("hubs", HubRegistry)
WEB_ROOT = web.AppKey("web_root", Path)
MONITOR = web.AppKey("monitor", Monitor)
MAILER = web.AppKey("mailer", Mailer)
RECORDINGS = web.AppKey("recordings", RecordingService)
# share of the connection test's packets the server drops: tests set it, production keeps 0
PROBE_DROP_RATE = web.AppKey("probe_drop_rate", float)
# background pages of the whiteboard, rendered in their own thread
BOARD_IMAGES = web.AppKey("board_images", BoardImages)
# free space of the data directory, checked before uploads and during recordings
DISK = web.AppKey("disk", DiskGuard)
# where the operator's listener answers (http://host:port), known once it is bound
OPERATOR_URL = web.AppKey("operator_url", str)
# this node's membership of the cluster, only when [cluster] redis_url is set (app.get(CLUSTER))
CLUSTER = web.AppKey("cluster", Cluster)
