"""`scalectl loadtest`: Locust scenarios run in child processes (runner), measured with HDR
histograms (results), gated on SLOs (slo, verdict), reported (reports, html) and compared
across runs (compare). No typer or rich here."""
