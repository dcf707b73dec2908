"""Peewee models: the shape of the store, no business rules.

Times are naive UTC. Free text is TextField (no silent truncation on PostgreSQL);
lengths are checked by the domain. `*_key` columns hold the normalised form used for
case-insensitive uniqueness and lookups, so both SQLite and PostgreSQL use plain indexes.
"""

from __future__ import annotations

from peewee import (
    BooleanField,
    CharField,
    CompositeKey,
    DatabaseProxy,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

database = DatabaseProxy()


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class SchemaVersion(BaseModel):
    version = IntegerField(primary_key=True)
    applied_at = DateTimeField()


class Token(BaseModel):
    id = CharField(primary_key=True, max_length=32)  # public id, also inside the token value
    name = TextField()
    name_key = TextField(index=True)
    secret_hash = CharField(max_length=64)  # SHA-256 hex of the token's secret part
    created_at = DateTimeField()
    expires_at = DateTimeField(null=True)
    last_used_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)
    refused_count = IntegerField(default=0)
    # Which key signed it: base/keyfile.key_id (schema 6); None for tokens issued before, until first use.
    key_id = CharField(max_length=16, null=True)
    scope = CharField(max_length=16, default="provision")  # "provision" or "read" (schema 8)


class User(BaseModel):
    id = CharField(primary_key=True, max_length=36)
    user_name = TextField()
    user_name_key = TextField(unique=True)
    external_id = TextField(null=True, unique=True)
    active = BooleanField(default=True, index=True)
    deprovisioned_at = DateTimeField(null=True, index=True)
    display_name = TextField(null=True)
    primary_email = TextField(null=True)
    attributes = TextField(default="{}")  # canonical SCIM JSON of the remaining attributes
    password_hash = TextField(null=True)
    version = IntegerField(default=1)
    created_at = DateTimeField()
    updated_at = DateTimeField(index=True)
    # Also indexed: (deprovisioned_at, created_at, id), /Users' default order (schema 3, store/db.py).


class UserEmail(BaseModel):
    user = ForeignKeyField(User, on_delete="CASCADE", backref="email_rows")
    value_key = TextField(index=True)


class Group(BaseModel):
    id = CharField(primary_key=True, max_length=36)
    display_name = TextField()
    display_name_key = TextField(unique=True)
    external_id = TextField(null=True, index=True)
    attributes = TextField(default="{}")
    version = IntegerField(default=1)
    created_at = DateTimeField()
    updated_at = DateTimeField(index=True)


class Membership(BaseModel):
    group = ForeignKeyField(Group, on_delete="CASCADE")
    user = ForeignKeyField(User, on_delete="CASCADE", index=True)
    created_at = DateTimeField()

    class Meta:
        primary_key = CompositeKey("group", "user")


class RoleMapping(BaseModel):
    group_key = TextField()
    group_name = TextField()
    role = TextField()
    created_at = DateTimeField()
    # The group this mapping is pinned to (schema 7): the first whose name matched it. Not a
    # foreign key: the pin outlives a deleted group, so a new group of that name gets nothing
    # until an admin rebinds (domain/roles.py).
    group_id = CharField(max_length=36, null=True, index=True)

    class Meta:
        indexes = ((("group_key", "role"), True),)


class Event(BaseModel):
    at = DateTimeField(index=True)
    actor = TextField()  # "token:<name>" or "cli"
    token_id = CharField(max_length=32, null=True, index=True)
    action = CharField(max_length=64, index=True)
    resource_type = CharField(max_length=32, null=True)
    resource_id = CharField(max_length=36, null=True, index=True)
    summary = TextField(default="")
    # The affected resource as the change left it, JSON, for the feed (schema 8; older rows: NULL).
    data = TextField(null=True)


class EventsPruned(BaseModel):
    """How far retention has deleted the event log: the one row's `through_id` (schema 8).

    A feed cursor at or after it missed nothing; one before it missed deleted events (410).
    """

    id = IntegerField(primary_key=True)  # always 1
    through_id = IntegerField()
    pruned_at = DateTimeField()


class WebhookEndpoint(BaseModel):
    """A receiver of signed event deliveries; its secrets are stored encrypted, never in clear."""

    id = CharField(primary_key=True, max_length=32)
    url = TextField()
    description = TextField(default="")
    event_types = TextField(null=True)  # JSON list of event types; NULL: every feed type
    secret_encrypted = TextField()  # Fernet token of the `whsec_` secret (domain/webhooks.py)
    previous_secret_encrypted = TextField(null=True)  # still signs until previous_expires_at
    previous_expires_at = DateTimeField(null=True)
    created_at = DateTimeField()
    disabled_at = DateTimeField(null=True)
    disabled_reason = TextField(null=True)
    failing_since = DateTimeField(null=True)  # first failure since the last 2xx
    # The delivery stream (schema 10, domain/stream.py): the last event it handled for this
    # endpoint, and which worker may send the events after it, until when.
    stream_cursor = IntegerField(default=0)
    stream_claimed_by = CharField(max_length=32, null=True)
    stream_lease_until = DateTimeField(null=True)


class WebhookDelivery(BaseModel):
    """One delivery that needs state of its own: a failed attempt's retries, one queued behind its
    user's earlier pending delivery, a test or a resend. Every other event goes out through its
    endpoint's stream cursor (domain/stream.py) and leaves no row."""

    event_id = IntegerField(index=True)
    endpoint = ForeignKeyField(WebhookEndpoint, on_delete="CASCADE", column_name="endpoint_id", index=False)
    subject = CharField(max_length=48, null=True)  # what must stay in order (a user), or NULL
    state = CharField(max_length=16, default="pending")  # pending, delivered, failed (gave up)
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField()
    lease_until = DateTimeField(null=True)  # claimed by a worker until then
    claimed_by = CharField(max_length=32, null=True)
    last_status = IntegerField(null=True)
    last_error = TextField(null=True)
    last_attempt_at = DateTimeField(null=True)
    delivered_at = DateTimeField(null=True)
    created_at = DateTimeField()


# The tables schema version 1 created; later versions add theirs in store/db.py's MIGRATIONS.
V1_MODELS = (SchemaVersion, Token, User, UserEmail, Group, Membership, RoleMapping, Event)
WEBHOOK_MODELS = (WebhookEndpoint, WebhookDelivery)
ALL_MODELS = V1_MODELS + WEBHOOK_MODELS + (EventsPruned,)
