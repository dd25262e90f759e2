-- The notification service's tables on SQLite. The delivery queue is the `deliveries` table
-- itself: a delivery is written in the transaction that accepts its notification, so nothing is
-- accepted without its deliveries and nothing is queued without its notification. Times are UTC (RFC 3339 text, which sorts as time does).

-- What a case's parent-side recipients must never be sent, remembered per case.
CREATE TABLE case_protections (
    agency TEXT NOT NULL CHECK (length(agency) = 4),
    case_id BLOB NOT NULL,
    secret_address INTEGER NOT NULL,
    protected_values TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (agency, case_id)
) STRICT;

CREATE TABLE notifications (
    id BLOB PRIMARY KEY,
    agency TEXT NOT NULL CHECK (length(agency) = 4),
    case_id BLOB NOT NULL,
    idempotency_key TEXT NOT NULL,
    -- A digest of the request: the same key with another request is refused.
    fingerprint TEXT NOT NULL,
    -- A village member's id or a staff member's `sub`.
    recipient_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    kind TEXT NOT NULL,
    language TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    redacted INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    created_at TEXT NOT NULL,
    UNIQUE (agency, idempotency_key)
) STRICT;
CREATE INDEX notifications_by_case ON notifications (agency, case_id, created_at DESC, id DESC);
CREATE INDEX notifications_by_recipient ON notifications (agency, recipient_id, created_at DESC, id DESC);
CREATE INDEX notifications_by_time ON notifications (agency, created_at DESC, id DESC);

-- One delivery per notification and channel: the queue.
CREATE TABLE deliveries (
    id BLOB PRIMARY KEY,
    notification_id BLOB NOT NULL REFERENCES notifications (id),
    agency TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'webhook', 'inbox')),
    -- The e-mail address or phone number; empty for the webhook and the inbox.
    address TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'deferred', 'retrying', 'delivered', 'dead')),
    -- Attempts begun, counted when a sender takes the delivery, so a sender that crashes mid-send
    -- still uses one up.
    attempts INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    -- A sender holds the delivery until then; after it another may take it up.
    lease_until TEXT,
    dead_reason TEXT NOT NULL,
    delivered_at TEXT,
    UNIQUE (notification_id, channel)
) STRICT;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE status IN ('pending', 'deferred', 'retrying');

-- Every attempt, for operators and callers.
CREATE TABLE delivery_attempts (
    delivery_id BLOB NOT NULL REFERENCES deliveries (id),
    n INTEGER NOT NULL,
    attempted_at TEXT NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT NOT NULL,
    permanent INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, n)
) STRICT;

-- The in-app inbox: a delivered inbox delivery.
CREATE TABLE inbox (
    notification_id BLOB PRIMARY KEY REFERENCES notifications (id),
    agency TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    read_at TEXT
) STRICT;
CREATE INDEX inbox_by_recipient ON inbox (agency, recipient_id, created_at DESC, notification_id DESC);

CREATE TABLE preferences (
    agency TEXT NOT NULL CHECK (length(agency) = 4),
    recipient_id TEXT NOT NULL,
    channels TEXT NOT NULL,
    language TEXT,
    quiet_from TEXT NOT NULL,
    quiet_until TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version > 0),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (agency, recipient_id)
) STRICT;
