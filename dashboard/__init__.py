"""Run dashboards over the run store. Not built yet: see issue 6."""
