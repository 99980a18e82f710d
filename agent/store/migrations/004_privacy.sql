-- Personal data: retention (`receptionist retention`) and erasure (`receptionist forget`), see
-- agent/store/privacy.py. Appointments and call rows outlive the caller's personal data, so the
-- columns that hold it become nullable; NULL means "erased", never "not given".
ALTER TABLE appointments ALTER COLUMN customer_name DROP NOT NULL;
ALTER TABLE appointments ALTER COLUMN customer_phone DROP NOT NULL;

-- when a call row lost its caller's data; NULL: not yet (the sweeper's work list)
ALTER TABLE calls ADD COLUMN IF NOT EXISTS personal_erased_at timestamptz;

-- the batched sweeps and erasures find their rows through these, not by scanning whole tables
CREATE INDEX IF NOT EXISTS calls_unerased_idx ON calls (business, started_at) WHERE personal_erased_at IS NULL;
CREATE INDEX IF NOT EXISTS appointments_ended_idx ON appointments (business, upper(during))
    WHERE customer_phone IS NOT NULL OR customer_name IS NOT NULL;
CREATE INDEX IF NOT EXISTS appointments_customer_phone_idx ON appointments (customer_phone)
    WHERE customer_phone IS NOT NULL;
CREATE INDEX IF NOT EXISTS leads_phone_idx ON leads (phone) WHERE phone IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_phone_idx ON messages (phone) WHERE phone IS NOT NULL;

-- one row per day the retention sweeper ran for the fleet: replicas or cron jobs on several machines
-- that start the same day find it and leave the work done (finished_at NULL: a run that died midway)
CREATE TABLE IF NOT EXISTS retention_runs (
    day         date        PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    counts      jsonb       NOT NULL DEFAULT '{}'
);

-- one row per `receptionist forget`, also when it found nothing: who asked, when, what it touched.
-- The number is kept masked to its last 4 digits: a hash of a phone number is reversed by trying
-- every number, so it would be the number in clear with extra steps.
CREATE TABLE IF NOT EXISTS erasures (
    id           bigserial   PRIMARY KEY,
    erased_at    timestamptz NOT NULL DEFAULT now(),
    requested_by text        NOT NULL,
    number_masked text       NOT NULL,
    counts       jsonb       NOT NULL
);
