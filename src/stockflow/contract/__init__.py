"""The contract with the outside world: topics, the edge that parses input events, output
models and messages, and the JSON Schemas generated from them."""
