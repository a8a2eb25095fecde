"""Seed 3: SSNet many-to-one against many-to-many on the real band powers."""
