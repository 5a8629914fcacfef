"""`scalectl loadtest`: Locust scenarios (scenarios) sent to a checked host (target), run in
child processes (runner) and watched (watch), measured with HDR histograms (rawjson,
results), gated on SLOs (slo, evaluation, verdict), reported (reports, html) and compared
across runs (compare). No typer or rich here."""
