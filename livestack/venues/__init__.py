"""Venue Connectivity Layer: the Venue Adapter boundary, the venue process loop, and one module per
venue protocol (simulated exchange, FIX)."""
