"""The owner's calendar: bookings as iCalendar events (a secret ICS feed, and a CalDAV calendar written
through the outbox), and the owner's own busy events in that calendar kept as a local copy that
check_availability reads."""
