"""Deposits: asked when a resident accepts a quote, paid through Stripe Checkout (or by bank
transfer in offline mode), refunded on withdrawal within the cooling-off period or when an
action is cancelled."""
