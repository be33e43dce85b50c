"""E-mail notifications to the customer, read from the same outbox as the webhooks."""
