"""Collective purchase actions, the measure catalogue and group price tiers; public pages."""
