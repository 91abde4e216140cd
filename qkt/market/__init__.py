"""Market data: candles, keys, timeframes, feeds and the trade -> candle aggregator."""
