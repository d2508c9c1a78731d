"""Households, registrations and their status history; the resident's own pages."""
