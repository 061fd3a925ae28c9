"""Notifications: delivers the outbox (shared/outbox.py) to partners' webhooks and members' mail.
It sits after settlement and before the gateway in the order of services: it reads every
service's events, and no service imports it."""
