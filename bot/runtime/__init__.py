"""Process plumbing: logging with secrets redacted (`logs`), Prometheus metrics (`metrics`) and the one
HTTP server for /healthz, /metrics and Slack's events (`http_server`).

The bottom of bot: may import `settings`, storage, alerts and sources, nothing else of bot.
"""
