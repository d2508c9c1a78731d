"""Tests of the resident's registration: the journey over HTTP, the service rules, bad input."""
