"""What stockflow does for a person or a program, whatever asks: forecast every key and
publish reorder suggestions, import a CSV file, publish a demand history. Between the entry
points (which parse, call one of these and print) and the engine and adapters; settings and
connections come in as arguments, presentation (bars, tables, charts) goes out as
callbacks or results."""
