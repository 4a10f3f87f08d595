"""Run dashboards: read-only web pages and a self-contained report over the run store.

``app`` (FastAPI routes) and ``report`` (one HTML file) render the page models of ``views`` (pure
functions of run-store data, which ``reads`` gathers from a store) with the Jinja2 templates in
``templates/`` and the Plotly figures of ``charts``; ``render`` holds the template environment and
the number formats. Nothing here writes to a run. Importing this package is cheap; FastAPI and
Plotly load with ``app`` / ``charts``.
"""
