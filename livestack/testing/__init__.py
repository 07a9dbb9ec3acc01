"""Test stand-ins (not the product): local substitutes for real venues and feeds, for tests and demos."""
