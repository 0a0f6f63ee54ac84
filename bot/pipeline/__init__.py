"""From a poll to a delivered alert: fetch and store (`poller`, `store`, `importer`, `backfill`), run the
rules and queue the alerts (`alerter`), deliver the outbox (`delivery`) with charts under alerts
(`alert_charts`).

May import the command layer (channel defaults, for the charts), `charts` and `runtime`; never a chat
library, `chat`, `cli` or `app`: the adapters' senders come in through `delivery.Sender`.
"""
