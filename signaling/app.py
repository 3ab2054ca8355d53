"""The aiohttp application: the one place that wires clinic, SFU and web together."""

from __future__ import annotations

import asyncio
import datetime
import importlib.resources
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from clinic import Clinic
from clinic.boardimages import BoardImages
from clinic.datafiles import private_dir, sweep_temporary
from recorder.manifest import Manifest
from sealing import Keyring
from sfu import IcePolicy, SfuOptions
from sfu.priority import apply_realtime
from sfu.remote import WorkerPool

from . import nodes
from .announce import announced_addresses
from .audit_checkpoints import AuditCheckpoints
from .body_deadline import body_deadline
from .call.chat import ChatLimits
from .call.hub import CallServices, HubRegistry
from .call.monitor import Monitor
from .config import Config
from .diskspace import DiskGuard
from .diskwatch import disk_watch
from .failures import quiet_http_parse_errors
from .keys import BOARD_IMAGES, CLINIC, CLUSTER, CONFIG, DISK, HUBS, MAILER, MONITOR, PROBE_DROP_RATE, RECORDINGS
from .mail_sender import Mailer
from .operator_listener import operator_listener
from .periodic import Periodic
from .practice.account import setup_account_routes
from .proxy import ProxyTrust
from .recording_service import AuditRecording, ForgetRecording, RecordingService, StoreRecording
from .routes import setup_routes

logger = logging.getLogger(__name__)

DB_FILE = "teleconsult.sqlite3"
#: Seconds between two sweeps of the documents' retention.
RETENTION_SWEEP_SECONDS = 3600.0


def web_root() -> Path:
    """The folder of the browser app (static files)."""
    return Path(str(importlib.resources.files("web")))


def sfu_options(config: Config) -> SfuOptions:
    return SfuOptions(
        audio_codecs=list(config.media.audio_codecs),
        video_codecs=list(config.media.video_codecs),
        connect_timeout=config.ice.connect_timeout,
        keyframe_request_interval=config.media.keyframe_request_interval,
        max_video_bitrate=config.media.max_video_kbps * 1000,
        congestion_control=config.media.congestion_control,
        opus_red=config.media.opus_red,
        max_playout_floor=config.media.max_playout_floor_ms / 1000,
        realtime_priority=config.media.realtime_priority,
    )


def open_keyring(config: Config) -> Keyring | None:
    """The key ring named in config (checked when the config was loaded), or None with a warning."""
    if config.key_path is None:
        logger.warning("No [storage] key_file: documents, recordings and whiteboard images are stored "
                       "in clear (see docs/encryption.md)")
        return None
    return Keyring(config.key_path)


async def open_clinic(config: Config, keyring: Keyring | None = None) -> Clinic:
    if keyring is None and config.key_path is not None:
        keyring = await asyncio.to_thread(Keyring, config.key_path)
    return await Clinic.open(
        config.database.url or config.data_path / DB_FILE,
        invitation_lifetime=datetime.timedelta(hours=config.invitations.lifetime_hours),
        keyring=keyring,
        documents_dir=config.documents_path,
    )


def recording_documents(clinic: Clinic) -> tuple[StoreRecording, ForgetRecording]:
    """A composed recording becomes a document of its consultation; retention removes it."""

    async def store(manifest: Manifest, path: Path) -> tuple[str, Path]:
        started = datetime.datetime.fromisoformat(manifest.started_at)
        name = f"enregistrement-{started:%Y-%m-%d-%Hh%M}.mp4"
        document = await clinic.add_document_file(manifest.consultation_id, "recording", name, "system", path)
        return document.id, await clinic.document_path(document)

    async def forget(manifest: Manifest) -> None:
        if manifest.document_id is not None:
            await clinic.remove_document(manifest.document_id)

    return store, forget


def recording_audit(clinic: Clinic) -> AuditRecording:
    """Recording start, stop and retention deletion in the audit log (ids only)."""

    async def audit(action: str, consultation_id: str, recording_id: str, role: str | None,
                    document_id: str | None) -> None:
        consultation = await clinic.get_consultation(consultation_id)
        actor = {"practitioner": consultation.practitioner_id, "patient": consultation.patient_id}
        await clinic.practice.audit(role or "system", actor.get(role or ""), action,
                                    patient_id=consultation.patient_id, consultation_id=consultation_id,
                                    document_id=document_id, object_id=recording_id)

    return audit


def prepare_data_folders(config: Config) -> None:
    """Before anything writes: data and outbox folders 0700, temporary files of a crash swept (blocking)."""
    for folder in (config.data_path, config.outbox_path):
        private_dir(folder)
        sweep_temporary(folder)


def make_app(config: Config) -> web.Application:
    """Build the application; storage opens and closes with it (cleanup_ctx)."""
    quiet_http_parse_errors()
    app = web.Application(client_max_size=1024 * 1024)
    app[CONFIG] = config
    app[PROBE_DROP_RATE] = 0.0
    app[DISK] = DiskGuard({"data": config.data_path, "documents": config.documents_path,
                           "whiteboard": config.whiteboard_path, "recordings": config.recordings_path},
                          config.storage.min_free_mb)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        ice = IcePolicy(list(config.ice.host_addresses), config.ice.port_min, config.ice.port_max,
                        await announced_addresses(config.ice))
        ice.install()
        await asyncio.to_thread(prepare_data_folders, config)
        keyring = await asyncio.to_thread(open_keyring, config)
        clinic = await open_clinic(config, keyring)
        app[CLINIC] = clinic
        wb = config.whiteboard
        images = app[BOARD_IMAGES] = BoardImages(config.whiteboard_path, max_px=wb.page_max_px,
                                                 max_pages=wb.max_pdf_pages, keyring=keyring)
        recordings = app[RECORDINGS] = RecordingService(config.recording, config.recordings_path, keyring)
        recordings.store, recordings.forget = recording_documents(clinic)
        recordings.audit = recording_audit(clinic)
        recordings.start()
        workers: WorkerPool | None = None
        if config.sfu.worker_count > 1:  # rooms live in media worker processes, one UDP slice each
            # recorder.worker: a consultation's recorder runs in the worker holding its room; it opens
            # the same key file (its path only is passed) to seal the tracks as this process would
            workers = WorkerPool(sfu_options(config), ice, config.sfu.worker_count,
                                 event_loop=config.media.event_loop, module="recorder.worker",
                                 extra={"key_file": None if keyring is None else str(keyring.path)})
            await workers.start()
            recordings.workers = workers
        else:  # the rooms' media runs in this process's loop (this thread)
            apply_realtime(config.media.realtime_priority)
        app[HUBS] = HubRegistry(CallServices(
            clinic, sfu_options(config), ChatLimits.from_config(config), whiteboard=wb,
            recording=config.recording, board_images=images,
            recordings=recordings, workers=workers,
        ))
        cluster = await nodes.join(config, app[HUBS])
        if cluster is not None:
            app[CLUSTER] = cluster
        app[MONITOR] = Monitor(app[HUBS], config.stats, ice.guard)
        app[MONITOR].start()
        app[MAILER] = Mailer(clinic, config.mail, config.outbox_path, config.smtp_ca_path)
        app[MAILER].start()
        checkpoints = AuditCheckpoints(clinic, config.audit_checkpoints_path, config.audit.checkpoint_seconds)
        checkpoints.start()
        # documents of every kind go after [documents] retention_days (0: kept)
        days = config.documents.retention_days
        retention = Periodic("document retention sweep", RETENTION_SWEEP_SECONDS,
                             lambda: clinic.expire_documents(days))
        if days:
            retention.start()
        logger.info("teleconsult ready, data in %s", config.data_path)
        yield
        if cluster is not None:
            await cluster.leave()
        await app[MONITOR].stop()
        await app[MAILER].stop()
        await checkpoints.stop()
        await retention.stop()
        app[HUBS].close()
        await recordings.close()  # before the workers: their recorders' files are completed first
        if workers is not None:
            await workers.close()
        images.close()
        await clinic.close()

    async def close_sockets(app: web.Application) -> None:
        # several nodes: take nothing new; each call's last socket closing hands it over
        # (its browsers reconnect through [cluster] site_url), leave() releases the rest
        cluster = app.get(CLUSTER)
        if cluster is not None:
            await cluster.drain()
        # open WebSockets would otherwise hold the shutdown for its whole timeout
        await app[HUBS].shutdown()

    app.cleanup_ctx.append(lifecycle)
    app.cleanup_ctx.append(operator_listener)
    app.cleanup_ctx.append(disk_watch)
    app.on_shutdown.append(close_sockets)
    setup_routes(app, web_root())
    setup_account_routes(app)
    # outermost: every other middleware and handler sees the client's real address
    app.middlewares.insert(0, ProxyTrust(config.http.trusted_proxies).middleware())
    app.middlewares.insert(1, body_deadline)  # next: the CSRF check reads form bodies too
    return app
