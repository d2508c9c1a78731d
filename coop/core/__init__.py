"""Shared mechanisms: the job outbox and queue, mail, signed tokens, Dutch addresses, formatting."""
