"""The owner's console: server-rendered pages over the receptionist's Postgres (`receptionist web`)."""
