"""The chat adapters, one module a platform (`slack`, `discord_bot`, `console`) and their toolkit (`common`);
`discord_http` answers Discord's Interactions Endpoint (HTTP, no gateway), `discord_api` holds the names
both Discord adapters share.

An adapter turns a platform payload into an `Invocation`, awaits `dispatch`, and renders the `Reply`;
it also sends alerts for the pipeline's dispatcher. slack_bolt/slack_sdk are imported only by `slack`,
discord.py only by `discord_bot`, cryptography (signatures) only by `discord_http`. May import the command
layer, the pipeline, settings and runtime; never `cli` or `app`.
"""
