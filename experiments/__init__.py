"""Experiments: seeded synthetic scenarios for exercising Kaizen end to end."""
