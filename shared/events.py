"""The normalized events every cloud payload becomes; routing and the client see only these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Normalized object event types, the same words for every cloud.
CREATED = "created"
DELETED = "deleted"
ARCHIVED = "archived"
RESTORED = "restored"
METADATA_UPDATED = "metadata_updated"
OTHER = "other"

#: The source of a trigger someone asked for over HTTP (a person, Cloud Scheduler), not a cloud event.
HTTP = "http"
GCS = "gcs"
PUBSUB = "pubsub"


@dataclass(frozen=True)
class ObjectEvent:
    """Something happened to one object in a bucket (GCS or S3), however it was delivered.

    ``version`` is the GCS generation or the S3 versionId; ``sequencer`` orders events on the same
    key (S3's sequencer; GCS's metageneration, for metadata updates only). With the bucket, key and
    event type they identify the event across redeliveries and delivery paths (direct, SNS, SQS,
    EventBridge, Pub/Sub notification).
    """

    source: str
    bucket: str
    key: str
    event_type: str
    event_name: str
    event_time: datetime
    event_id: str
    size: int | None = None
    etag: str | None = None
    md5: str | None = None
    version: str | None = None
    sequencer: str | None = None
    content_type: str | None = None
    region: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def uri(self) -> str:
        """The object's URL as its cloud's tools spell it (``gs://`` or ``s3://``)."""
        scheme = "gs" if self.source == GCS else self.source
        return f"{scheme}://{self.bucket}/{self.key}"

    def identity(self) -> dict[str, Any]:
        """What makes this event unique; a redelivery has the same identity, a new version does not."""
        return {
            "source": self.source,
            "bucket": self.bucket,
            "key": self.key,
            "event_type": self.event_type,
            "version": self.version,
            "sequencer": self.sequencer,
            # Without a version or sequencer nothing else tells two writes apart.
            "event_id": None if (self.version or self.sequencer) else self.event_id,
        }

    def log_fields(self) -> dict[str, Any]:
        """What a log line about this event carries, so Cloud Logging finds it by bucket and object name."""
        return {
            "source": self.source,
            "event_id": self.event_id,
            "bucket": self.bucket,
            "key": self.key,
            "event_type": self.event_type,
        }

    def conf(self) -> dict[str, Any]:
        """The DAG run conf for this event: plain JSON, the key decoded."""
        return {
            "source": self.source,
            "bucket": self.bucket,
            "key": self.key,
            "uri": self.uri,
            "size": self.size,
            "etag": self.etag,
            "md5": self.md5,
            "version": self.version,
            "sequencer": self.sequencer,
            "content_type": self.content_type,
            "region": self.region,
            "event_type": self.event_type,
            "event_name": self.event_name,
            "event_time": self.event_time.isoformat(),
            "event_id": self.event_id,
        }


@dataclass(frozen=True)
class MessageEvent:
    """An application message (Pub/Sub, SNS, SQS); ``body`` is parsed JSON where it is JSON, else text."""

    source: str
    message_id: str
    body: Any
    attributes: Mapping[str, str]
    time: datetime
    topic: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def identity(self) -> dict[str, Any]:
        """Message ids are unique per topic, and redeliveries keep them."""
        return {"source": self.source, "topic": self.topic, "message_id": self.message_id}

    def log_fields(self) -> dict[str, Any]:
        """What a log line about this message carries, so Cloud Logging finds it by message id and topic."""
        return {"source": self.source, "message_id": self.message_id, "topic": self.topic}

    def conf(self) -> dict[str, Any]:
        """The DAG run conf for this message."""
        return {
            "source": self.source,
            "message_id": self.message_id,
            "topic": self.topic,
            "attributes": dict(self.attributes),
            "body": self.body,
            "event_time": self.time.isoformat(),
        }


Event = ObjectEvent | MessageEvent


def event_time(event: Event) -> datetime:
    """When the event happened, whichever kind it is."""
    return event.event_time if isinstance(event, ObjectEvent) else event.time
