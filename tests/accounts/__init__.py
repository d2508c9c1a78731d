"""Tests of logging in: magic links, the login form, staff passwords, rate limits, logout."""
