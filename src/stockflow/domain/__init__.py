"""The stock rules: pure functions over immutable values, no I/O, no clock, no id generation."""
