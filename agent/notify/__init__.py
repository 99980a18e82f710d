"""Notifications to the business owner: what a finished call must tell them at once (at_once), the
channels that carry it (email, SMS, webhook) and the outbox sender that delivers each exactly once."""
