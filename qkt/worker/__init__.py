"""One strategy in one process: candles in, engine, journal, status server."""
