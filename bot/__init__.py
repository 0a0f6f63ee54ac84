"""The service around the rules: commands, chat adapters, the pipeline, the CLI and the composition root.

`app` is the one composition root (it builds and wires everything); `settings` reads the configuration;
`charts` draws charts. Sub-packages, layered top to bottom (each imports only those below it):
`cli` (the terminal) -> `app` -> `chat` (Slack, Discord, console) -> `pipeline` (poll, stage, deliver)
-> `commands` (the command layer) -> `charts`, `settings`, `runtime` (logs, metrics, HTTP). bot may
import alerts, sources and storage; nothing below bot imports it.
"""
