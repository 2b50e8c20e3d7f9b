"""The scenario files shipped with seeding (baseline, diverse, load), as package data."""
