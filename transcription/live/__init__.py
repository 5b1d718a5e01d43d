"""The live pipeline: everything a running transcription run uses (sources, mixer, STT streams,
ingest, attribution, batching, fan-out, ticker, runner)."""
