"""The CandleHub: ref-counted keys, ZeroMQ fan-out of closed candles, snapshots, subscribers."""
