"""The leaderboards: the domain (`base`: Board, Entry, Snapshot, Source, SourceError), one module per
service (`lmarena`, `openllm`, `aider`, `livebench`, `swebench`, `epoch`) behind `registry`, who made
each model (`identity` with its tables in `data/`), history timelines (`timeline`), polite HTTP (`http`)
and each origin's published history, downloaded for `backfill` (`history`).

The ground layer: imports no other leaderwatch package; httpx only in `http` and the sources' fetches.
"""
