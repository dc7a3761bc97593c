"""Jobs: claim batches from the inbox, run the engine, apply its decisions, update boards."""
