-- The call report's figures that `receptionist report` aggregates, kept as columns computed by Postgres
-- when the report is written: aggregating 100,000 calls no longer parses 100,000 JSON documents per
-- figure. calls.summary stays the report itself; these follow it and cannot drift from it.
ALTER TABLE calls
    ADD COLUMN IF NOT EXISTS response_gap_p50_s double precision
        GENERATED ALWAYS AS ((summary->'timing'->'response_gap_s'->>'p50')::double precision) STORED,
    ADD COLUMN IF NOT EXISTS response_gap_max_s double precision
        GENERATED ALWAYS AS ((summary->'timing'->'response_gap_s'->>'max')::double precision) STORED,
    ADD COLUMN IF NOT EXISTS to_greeting_s double precision
        GENERATED ALWAYS AS ((summary->'timing'->>'to_greeting_s')::double precision) STORED,
    ADD COLUMN IF NOT EXISTS escalation_result text
        GENERATED ALWAYS AS (CASE WHEN jsonb_typeof(summary->'escalation') = 'object'
                                  THEN coalesce(summary->'escalation'->>'result', 'requested') END) STORED,
    ADD COLUMN IF NOT EXISTS flag_names jsonb
        GENERATED ALWAYS AS (jsonb_path_query_array(summary, '$.flags[*].flag')) STORED,
    ADD COLUMN IF NOT EXISTS cost_total numeric
        GENERATED ALWAYS AS ((summary->'cost'->>'total')::numeric) STORED;
