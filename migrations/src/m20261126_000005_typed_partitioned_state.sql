-- Herald schema v2 (docs/DESIGN.md): typed states, counters instead of re-aggregation, thin hot tables
-- that PostgreSQL can update in place, daily partitions for retention, work tables for what is in
-- progress. The v1 tables are copied over and dropped.

CREATE EXTENSION IF NOT EXISTS btree_gin;

-- The same closed sets as the Rust enums in herald-domain.
CREATE TYPE channel AS ENUM ('email', 'sms');
CREATE TYPE priority AS ENUM ('high', 'normal', 'low');
CREATE TYPE notification_status AS ENUM
    ('scheduled', 'accepted', 'processing', 'delivered', 'partially_delivered', 'failed');
CREATE TYPE delivery_status AS ENUM ('queued', 'sending', 'retrying', 'sent', 'failed', 'skipped');
CREATE TYPE attempt_outcome AS ENUM
    ('sent', 'retryable_error', 'permanent_error', 'gave_up', 'in_doubt');

-- Keep the v1 rows while the tables are rebuilt.
CREATE TEMP TABLE v1_notifications ON COMMIT DROP AS SELECT * FROM notifications;
CREATE TEMP TABLE v1_outbox ON COMMIT DROP AS SELECT * FROM outbox_batches;
CREATE TEMP TABLE v1_deliveries ON COMMIT DROP AS SELECT * FROM deliveries;
CREATE TEMP TABLE v1_attempts ON COMMIT DROP AS SELECT * FROM delivery_attempts;
DROP TABLE delivery_attempts, deliveries, outbox_batches, notifications;

-- The first UUIDv7 of a day (UTC): notification ids are UUIDv7, so a range of ids is a range of
-- acceptance times, and partitions by id are partitions by day.
CREATE FUNCTION herald_day_bound(day date) RETURNS uuid LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT (lpad(to_hex((extract(epoch FROM (day::timestamp AT TIME ZONE 'UTC')) * 1000)::bigint), 12, '0')
            || '00000000000000000000')::uuid
$$;

-- Immutable content of accepted notifications.
CREATE TABLE notifications (
    id               uuid NOT NULL,
    tenant_id        uuid NOT NULL,
    user_ids         text[] NOT NULL,
    channels         channel[] NOT NULL,
    subject          text,
    body             text NOT NULL,
    data             jsonb NOT NULL DEFAULT '{}'::jsonb,
    priority         priority NOT NULL,
    scheduled_for    timestamptz,
    idempotency_key  text,
    request_hash     bytea NOT NULL,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (id)
) PARTITION BY RANGE (id);
-- A tenant's notifications newest first (keyset on id).
CREATE INDEX notifications_tenant ON notifications (tenant_id, id);
-- A tenant's notifications to one recipient.
CREATE INDEX notifications_tenant_recipients ON notifications USING gin (tenant_id, user_ids);

-- The mutable part, narrow so that counter updates are HOT: only a status change touches an index.
CREATE TABLE notification_states (
    id                   uuid NOT NULL,
    tenant_id            uuid NOT NULL,
    status               notification_status NOT NULL,
    deliveries_expected  integer NOT NULL CHECK (deliveries_expected > 0),
    deliveries_sent      integer NOT NULL DEFAULT 0,
    deliveries_failed    integer NOT NULL DEFAULT 0,
    deliveries_skipped   integer NOT NULL DEFAULT 0,
    updated_at           timestamptz NOT NULL,
    PRIMARY KEY (id),
    CHECK (deliveries_sent >= 0 AND deliveries_failed >= 0 AND deliveries_skipped >= 0),
    CHECK (deliveries_sent + deliveries_failed + deliveries_skipped <= deliveries_expected)
) PARTITION BY RANGE (id);
-- A tenant's notifications in one status, newest first.
CREATE INDEX notification_states_tenant_status ON notification_states (tenant_id, status, id);

-- Forward only (NotificationStatus::may_become in herald-domain).
CREATE FUNCTION herald_notification_status_rank(status notification_status) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE status WHEN 'scheduled' THEN 0 WHEN 'accepted' THEN 1 WHEN 'processing' THEN 2 ELSE 3 END
$$;
CREATE FUNCTION herald_check_notification_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF herald_notification_status_rank(NEW.status) > herald_notification_status_rank(OLD.status) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a notification cannot move from % to %', OLD.status, NEW.status
        USING ERRCODE = 'check_violation';
END
$$;
CREATE TRIGGER notification_states_forward_only
    BEFORE UPDATE OF status ON notification_states
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION herald_check_notification_transition();

-- Idempotency keys live beside the notifications: a unique index across daily partitions would have
-- to include the day, and keys expire much sooner than notifications.
CREATE TABLE idempotency_keys (
    tenant_id        uuid NOT NULL,
    key              text NOT NULL,
    notification_id  uuid NOT NULL,
    request_hash     bytea NOT NULL,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- Scheduled notifications waiting to be due.
CREATE TABLE scheduled_notifications (
    notification_id  uuid PRIMARY KEY,
    due_at           timestamptz NOT NULL
);
CREATE INDEX scheduled_notifications_due_at ON scheduled_notifications (due_at);

-- Transactional outbox: one row per committed ingest batch, deleted once every record of the batch
-- is acknowledged or parked.
CREATE TABLE outbox_batches (
    id                  uuid PRIMARY KEY,
    notification_ids    uuid[] NOT NULL,
    notification_count  integer NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    lease_owner         uuid,
    lease_until         timestamptz
);
CREATE INDEX outbox_batches_created_at ON outbox_batches (created_at);

-- Records the broker refused for good: kept with the reason, replayable.
CREATE TABLE parked_publications (
    notification_id  uuid NOT NULL,
    user_id          text NOT NULL,
    reason           text NOT NULL,
    parked_at        timestamptz NOT NULL DEFAULT now(),
    replayed_at      timestamptz,
    PRIMARY KEY (notification_id, user_id)
);

-- One row per (notification, recipient, channel). `id` is UUIDv5 of that triple: every worker
-- derives the same id, and it is the reference given to the provider. No index but the key:
-- status changes are HOT updates.
CREATE TABLE deliveries (
    notification_id      uuid NOT NULL,
    id                   uuid NOT NULL,
    tenant_id            uuid NOT NULL,
    user_id              text NOT NULL,
    channel              channel NOT NULL,
    provider             text NOT NULL,
    status               delivery_status NOT NULL,
    attempts             integer NOT NULL DEFAULT 0,
    owner_session        uuid,
    provider_message_id  text,
    last_error           text,
    next_attempt_at      timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (notification_id, id)
) PARTITION BY RANGE (notification_id);

-- DeliveryStatus::may_become in herald-domain.
CREATE FUNCTION herald_check_delivery_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status::text || '>' || NEW.status::text IN (
        'queued>sending', 'retrying>sending',
        'sending>sent', 'sending>retrying', 'sending>failed', 'sending>queued') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a delivery cannot move from % to %', OLD.status, NEW.status
        USING ERRCODE = 'check_violation';
END
$$;
CREATE TRIGGER deliveries_transitions
    BEFORE UPDATE OF status ON deliveries
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION herald_check_delivery_transition();

-- Every provider call.
CREATE TABLE delivery_attempts (
    notification_id      uuid NOT NULL,
    delivery_id          uuid NOT NULL,
    attempt              integer NOT NULL,
    outcome              attempt_outcome NOT NULL,
    provider             text NOT NULL,
    http_status          integer,
    error                text,
    provider_message_id  text,
    started_at           timestamptz NOT NULL,
    finished_at          timestamptz NOT NULL,
    PRIMARY KEY (notification_id, delivery_id, attempt)
) PARTITION BY RANGE (notification_id);

-- Deliveries waiting for a provider lane: overflow (`queued`) and retries (`retrying`), due at `due_at`.
CREATE TABLE delivery_queue (
    delivery_id      uuid PRIMARY KEY,
    notification_id  uuid NOT NULL,
    provider         text NOT NULL,
    due_at           timestamptz NOT NULL,
    enqueued_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivery_queue_provider_due ON delivery_queue (provider, due_at);

-- Worker processes, leased by heartbeat (database clock).
CREATE TABLE worker_sessions (
    id            uuid PRIMARY KEY,
    host          text NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);

-- Which deliveries a session claimed, one row per claim batch, deleted when every outcome of the batch
-- is recorded: what an in-doubt takeover reads, so that `deliveries` needs no owner index.
CREATE TABLE send_batches (
    id                uuid PRIMARY KEY,
    session_id        uuid NOT NULL,
    notification_ids  uuid[] NOT NULL,
    delivery_ids      uuid[] NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(notification_ids) = cardinality(delivery_ids))
);
CREATE INDEX send_batches_session ON send_batches (session_id);

-- Kafka records a worker could not process (undecodable, unknown version, notification gone).
CREATE TABLE parked_records (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL,
    record_key   bytea,
    payload      bytea,
    reason       text NOT NULL,
    parked_at    timestamptz NOT NULL DEFAULT now(),
    replayed_at  timestamptz,
    UNIQUE (topic, partition, "offset")
);

-- Versioned recipients: a cache entry is only ever replaced by a newer version.
ALTER TABLE users ADD COLUMN version bigint NOT NULL DEFAULT 1;

-- Daily partitions of the four partitioned tables for [first_day, last_day]; days that already exist
-- are left alone, and a day whose rows already sit in the default partition is skipped (its rows stay
-- there and are deleted by retention). Returns the partitions created.
CREATE FUNCTION herald_ensure_partitions(first_day date, last_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day date;
    parent text;
    partition_name text;
    storage text;
    created integer := 0;
BEGIN
    FOR day IN SELECT generate_series(first_day, last_day, interval '1 day')::date LOOP
        FOREACH parent IN ARRAY ARRAY['notifications', 'notification_states', 'deliveries',
                                      'delivery_attempts'] LOOP
            partition_name := parent || '_' || to_char(day, 'YYYYMMDD');
            CONTINUE WHEN to_regclass(partition_name) IS NOT NULL;
            -- Room on every page for updated row versions (HOT updates): a delivery is updated
            -- about once after its insert, so half of each page is kept free for that.
            storage := CASE parent WHEN 'notification_states' THEN ' WITH (fillfactor = 70)'
                                   WHEN 'deliveries' THEN ' WITH (fillfactor = 50)'
                                   ELSE '' END;
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)%s',
                               partition_name, parent, herald_day_bound(day),
                               herald_day_bound(day + 1), storage);
                created := created + 1;
            EXCEPTION WHEN check_violation THEN
                RAISE NOTICE 'rows of % are in the default partition of %; day skipped', day, parent;
            END;
        END LOOP;
    END LOOP;
    RETURN created;
END
$$;

-- Drops the days before `keep_from` whose notifications are all final, and deletes the same days'
-- rows from the default partitions. Returns one row per day considered.
CREATE FUNCTION herald_drop_expired_partitions(keep_from date)
RETURNS TABLE (day date, dropped boolean) LANGUAGE plpgsql AS $$
DECLARE
    states_partition text;
    unfinished boolean;
BEGIN
    FOR day IN
        SELECT to_date(right(c.relname, 8), 'YYYYMMDD')
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = 'notification_states' AND c.relname ~ '_[0-9]{8}$'
          AND to_date(right(c.relname, 8), 'YYYYMMDD') < keep_from
        ORDER BY 1
    LOOP
        states_partition := 'notification_states_' || to_char(day, 'YYYYMMDD');
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE status IN (%L, %L, %L))',
                       states_partition, 'scheduled', 'accepted', 'processing')
            INTO unfinished;
        IF unfinished THEN
            dropped := false;
        ELSE
            EXECUTE format('DROP TABLE IF EXISTS %I, %I, %I, %I',
                           'delivery_attempts_' || to_char(day, 'YYYYMMDD'),
                           'deliveries_' || to_char(day, 'YYYYMMDD'),
                           states_partition,
                           'notifications_' || to_char(day, 'YYYYMMDD'));
            dropped := true;
        END IF;
        RETURN NEXT;
    END LOOP;
    DELETE FROM delivery_attempts_default WHERE notification_id < herald_day_bound(keep_from);
    DELETE FROM deliveries_default WHERE notification_id < herald_day_bound(keep_from);
    DELETE FROM notification_states_default s WHERE s.id < herald_day_bound(keep_from)
        AND s.status IN ('delivered', 'partially_delivered', 'failed');
    DELETE FROM notifications_default n WHERE n.id < herald_day_bound(keep_from)
        AND NOT EXISTS (SELECT 1 FROM notification_states_default s WHERE s.id = n.id);
END
$$;

-- Rows outside every premade day (a clock far off) land here rather than fail.
CREATE TABLE notifications_default PARTITION OF notifications DEFAULT;
CREATE TABLE notification_states_default PARTITION OF notification_states DEFAULT WITH (fillfactor = 70);
CREATE TABLE deliveries_default PARTITION OF deliveries DEFAULT WITH (fillfactor = 50);
CREATE TABLE delivery_attempts_default PARTITION OF delivery_attempts DEFAULT;

SELECT herald_ensure_partitions(current_date - 1, current_date + 7);

-- The v1 rows, moved over.
INSERT INTO notifications (id, tenant_id, user_ids, channels, subject, body, data, priority,
                           scheduled_for, idempotency_key, request_hash, created_at)
SELECT id, tenant_id, user_ids, channels::channel[], subject, body, data, priority::priority,
       scheduled_for, idempotency_key, request_hash, created_at
FROM v1_notifications;

INSERT INTO notification_states (id, tenant_id, status, deliveries_expected, deliveries_sent,
                                 deliveries_failed, deliveries_skipped, updated_at)
SELECT n.id, n.tenant_id, n.status::notification_status,
       greatest(cardinality(n.user_ids) * cardinality(n.channels), 1),
       count(d.id) FILTER (WHERE d.status = 'sent'),
       count(d.id) FILTER (WHERE d.status = 'failed'),
       count(d.id) FILTER (WHERE d.status = 'skipped'),
       n.updated_at
FROM v1_notifications n LEFT JOIN v1_deliveries d ON d.notification_id = n.id
GROUP BY n.id, n.tenant_id, n.status, n.user_ids, n.channels, n.updated_at;

INSERT INTO idempotency_keys (tenant_id, key, notification_id, request_hash, created_at)
SELECT tenant_id, idempotency_key, id, request_hash, created_at
FROM v1_notifications WHERE idempotency_key IS NOT NULL;

INSERT INTO scheduled_notifications (notification_id, due_at)
SELECT id, scheduled_for FROM v1_notifications WHERE status = 'scheduled';

INSERT INTO outbox_batches (id, notification_ids, notification_count, created_at)
SELECT id, notification_ids, cardinality(notification_ids), created_at FROM v1_outbox;

-- v1 `pending` is `retrying`; a v1 `sending` has no session to take it over: it is queued again.
INSERT INTO deliveries (notification_id, id, tenant_id, user_id, channel, provider, status, attempts,
                        provider_message_id, last_error, next_attempt_at, created_at, updated_at)
SELECT notification_id, id, tenant_id, user_id, channel::channel,
       coalesce(provider, CASE channel WHEN 'email' THEN 'sendgrid' ELSE 'twilio' END),
       CASE status WHEN 'pending' THEN 'retrying' WHEN 'sending' THEN 'queued' ELSE status END::delivery_status,
       attempts, provider_message_id, last_error, next_attempt_at, created_at, updated_at
FROM v1_deliveries;

INSERT INTO delivery_queue (delivery_id, notification_id, provider, due_at)
SELECT id, notification_id, provider, coalesce(next_attempt_at, now())
FROM deliveries WHERE status IN ('queued', 'retrying');

INSERT INTO delivery_attempts (notification_id, delivery_id, attempt, outcome, provider, http_status,
                               error, provider_message_id, started_at, finished_at)
SELECT d.notification_id, a.delivery_id, a.attempt, a.outcome::attempt_outcome,
       coalesce(d.provider, CASE d.channel WHEN 'email' THEN 'sendgrid' ELSE 'twilio' END),
       a.http_status, a.error, a.provider_message_id, a.started_at, a.finished_at
FROM v1_attempts a JOIN v1_deliveries d ON d.id = a.delivery_id
-- v1 also wrote an attempt row for deliveries it skipped; that was no provider call.
WHERE a.outcome <> 'skipped';
