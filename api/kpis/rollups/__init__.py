"""Rollups: exact hourly summaries of raw points that KPIs read instead of raw history."""
