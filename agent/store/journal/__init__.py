"""The call journal: the only writer of call records, batched, in order, and spilled to disk while
Postgres is away. `events` is what a call records, `writer` the CallJournal that orders, buffers and
spills them, `postgres_writes` its batches in Postgres (refused events set aside), `rows` the SQL each
event runs, `spill_file` and `encoding` the file events wait in."""
