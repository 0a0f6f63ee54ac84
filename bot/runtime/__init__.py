"""Process plumbing: logging with secrets redacted (`logs`), Prometheus metrics (`metrics`), the one
HTTP server for /healthz, /metrics and the chat platforms' requests (`http_server`), and the leader loop
that runs the leader's work on one replica of many (`leading`).

The bottom of bot: may import `settings`, storage, alerts and sources, nothing else of bot.
"""
